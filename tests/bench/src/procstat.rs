//! What a server process costs, read from Linux's `/proc`: CPU time (`/proc/<pid>/stat`, user
//! plus system, all threads) and resident memory (`/proc/<pid>/status`: `VmRSS` now, `VmHWM`
//! the peak). Writing `5` to `/proc/<pid>/clear_refs` resets the peak, so each workload's
//! window reports its own.

use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU time so far.
    pub cpu: Duration,
    /// Peak resident set since start or the last reset, bytes.
    pub peak_rss: u64,
}

/// Reads `pid` now; `None` when it is gone or `/proc` is not there.
pub fn sample(pid: u32, ticks_per_second: u64) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    Some(ProcSample {
        cpu: Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64),
        peak_rss: status_kib(&status, "VmHWM")? * 1024,
    })
}

/// Resets the peak resident set of `pid` (best effort: an older kernel or another owner may
/// refuse, and the peak is then the process's whole life).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on every Linux we
/// know when `getconf` is missing).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses
/// and may hold spaces, so fields are counted after its closing parenthesis: there field 3
/// (state) comes first, and utime and stime (fields 14 and 15) are the 12th and 13th.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The value of a `Name:   1234 kB` line of `/proc/<pid>/status` (or of `Threads:  7`).
pub(crate) fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_utime_plus_stime_even_with_spaces_in_the_name() {
        let stat = "4242 (yrd (serve) x) S 1 4242 4242 0 -1 4194560 2837 0 0 0 \
                    150 27 0 0 20 0 7 0 123 456 789";
        assert_eq!(cpu_ticks(stat), Some(177));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn peak_rss_is_read_from_vmhwm() {
        let status = "Name:\tyrd\nVmPeak:\t  999 kB\nVmHWM:\t   35840 kB\nVmRSS:\t 23000 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(35_840));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = sample(std::process::id(), ticks_per_second()).expect("/proc/self");
        assert!(me.peak_rss > 0);
    }
}

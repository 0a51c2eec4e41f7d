-- An agency's results sampled in a date range, in page order within each day: the second step
-- of a date-range search with an agency (docs/architecture.md "Spot-check results"). The walk
-- of `results_by_publisher` finds a recent range's page in its first rows, but reads every
-- newer result of the agency before an old one; this index answers the rest as one range of
-- the agency's results, read from the index alone (sampling date, publication time and id are
-- all in it), whose cost is the rows the range holds rather than the results published since.
-- Every publish writes one more index entry for it (measured in docs/performance.md "Search
-- at 1,000,000 results").
CREATE INDEX results_by_publisher_sampling ON results (publisher, sampling_date, created_at, id);

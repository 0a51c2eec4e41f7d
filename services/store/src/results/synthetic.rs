//! A synthetic corpus of published spot-check results with realistic distributions, for
//! filling a database through [`crate::Store::load_results`] and measuring searches at scale
//! (docs/performance.md "Search at 1,000,000 results").
//!
//! The `n`-th result of a corpus is a pure function of `n` and the corpus (count, end, span),
//! so the same parameters always give the same rows, and a benchmark or a test can compute
//! which producer, agency, dates and product a stored result has without reading it back:
//!
//! * five publishing agencies (Shanghai, Jiangsu, Zhejiang, Anhui, Shandong), unevenly busy
//!   (30 / 25 / 20 / 15 / 10 %);
//! * [`PRODUCERS`] producers in seven provinces, a few of them sampled far more often than
//!   most (the pick is skewed towards low serials); half of the samples bought online from one
//!   of [`SELLERS`] shops on four platforms, half taken on site;
//! * [`CATEGORIES`] product categories, each with its keyword in every product name, several
//!   products each and 200 brand prefixes: thousands of distinct names;
//! * about 8 % non-conforming, more in some categories than in others;
//! * publication times evenly spread over the span (years), each sampled 7 to 60 days before
//!   it was published and reported on within five days of sampling.
//!
//! Ids are UUIDv7 like the exchange's: their time part is the publication time.

use time::{Date, Duration, OffsetDateTime};
use yrd_domain::AgencyId;
use yrd_domain::calendar::china_date;
use yrd_domain::spotcheck::{
    CampaignInput, FieldErrors, ProducerInput, ProductInput, ResultInput, SellerInput,
    SpotCheckResult, TestItemInput, format_date,
};
use yrd_domain::uscc::check_character;

use crate::time_codec::stored_precision;

/// The publishing agencies and their share of the results, in percent.
pub const AGENCIES: [(&str, u64); 5] = [
    ("310000-SAMR", 30),
    ("320000-AMR", 25),
    ("330000-AMR", 20),
    ("340000-AMR", 15),
    ("370000-AMR", 10),
];

/// How many distinct producers the results name.
pub const PRODUCERS: u64 = 20_000;
/// How many distinct online shops (sellers with a USCC) the online purchases name.
pub const SELLERS: u64 = 50_000;

/// Provinces the producers and sellers are registered in.
const PROVINCES: [&str; 7] = ["31", "32", "33", "34", "37", "35", "44"];
/// E-commerce platforms of the online purchases.
const PLATFORMS: [&str; 4] = ["淘宝", "京东", "拼多多", "抖音"];
/// Brand syllables: 20 × 10 two-syllable brand prefixes.
const BRAND_FIRST: [&str; 20] = [
    "金", "华", "新", "宏", "恒", "永", "盛", "天", "东", "嘉", "瑞", "康", "佳", "美", "顺", "鑫",
    "安", "龙", "祥", "博",
];
const BRAND_SECOND: [&str; 10] = ["达", "星", "源", "泰", "丰", "宇", "诚", "益", "迪", "远"];

/// A product category: its keyword (contained in every product name of the category), its
/// products, and how many results in a thousand are non-conforming.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    /// The keyword a "category" search looks for in product names.
    pub keyword: &'static str,
    /// The category as results state it.
    pub name: &'static str,
    /// Product names, each containing the keyword.
    pub products: &'static [&'static str],
    /// Non-conforming results per thousand.
    pub non_conforming_per_mille: u64,
}

/// The product categories, picked evenly.
pub const CATEGORIES: [Category; 12] = [
    Category {
        keyword: "玩具",
        name: "儿童玩具",
        products: &[
            "塑料玩具车",
            "毛绒玩具",
            "电动玩具",
            "益智拼装玩具",
            "玩具水枪",
        ],
        non_conforming_per_mille: 120,
    },
    Category {
        keyword: "文具",
        name: "学生用品",
        products: &["学生文具套装", "文具盒", "儿童文具礼盒"],
        non_conforming_per_mille: 60,
    },
    Category {
        keyword: "充电器",
        name: "电器附件",
        products: &["电动自行车充电器", "手机充电器", "快速充电器", "车载充电器"],
        non_conforming_per_mille: 150,
    },
    Category {
        keyword: "服装",
        name: "纺织服装",
        products: &["儿童针织服装", "婴幼儿服装", "运动服装", "女士梭织服装"],
        non_conforming_per_mille: 80,
    },
    Category {
        keyword: "燃气灶",
        name: "燃气具",
        products: &["家用燃气灶", "嵌入式燃气灶", "台式燃气灶"],
        non_conforming_per_mille: 70,
    },
    Category {
        keyword: "电热水壶",
        name: "小家电",
        products: &["不锈钢电热水壶", "玻璃电热水壶", "保温电热水壶"],
        non_conforming_per_mille: 50,
    },
    Category {
        keyword: "插座",
        name: "电器附件",
        products: &["移动插座", "转换插座", "智能插座", "墙壁插座"],
        non_conforming_per_mille: 110,
    },
    Category {
        keyword: "奶瓶",
        name: "婴童用品",
        products: &["玻璃奶瓶", "硅胶奶瓶", "宽口径奶瓶"],
        non_conforming_per_mille: 30,
    },
    Category {
        keyword: "头盔",
        name: "安全防护",
        products: &["电动自行车头盔", "骑行头盔", "儿童头盔"],
        non_conforming_per_mille: 140,
    },
    Category {
        keyword: "鞋",
        name: "鞋类",
        products: &["运动鞋", "儿童皮鞋", "休闲鞋", "旅游鞋"],
        non_conforming_per_mille: 40,
    },
    Category {
        keyword: "涂料",
        name: "建材",
        products: &["内墙涂料", "木器涂料", "防水涂料"],
        non_conforming_per_mille: 60,
    },
    Category {
        keyword: "口罩",
        name: "劳动防护",
        products: &["日常防护口罩", "儿童口罩", "医用外科口罩"],
        non_conforming_per_mille: 20,
    },
];

/// A corpus: `count` results published evenly over `span` up to `end`.
#[derive(Debug, Clone, Copy)]
pub struct Corpus {
    /// How many results.
    pub count: u64,
    /// When the last one was published.
    pub end: OffsetDateTime,
    /// The time from the first publication to the last.
    pub span: Duration,
}

/// The end of the default corpus: 2026-12-01 00:00 UTC.
pub const DEFAULT_END_UNIX: i64 = 1_796_083_200;
/// The span of the default corpus, in years.
pub const DEFAULT_YEARS: u32 = 3;

/// `count` results over [`DEFAULT_YEARS`] up to [`DEFAULT_END_UNIX`]: what `yrd-bench load`
/// writes by default and the store's search bench expects.
pub fn default_corpus(count: u64) -> Corpus {
    let end =
        OffsetDateTime::from_unix_timestamp(DEFAULT_END_UNIX).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Corpus::new(count, end, DEFAULT_YEARS)
}

/// The `n`-th result of a corpus, with what a search needs to know about it.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// The result id.
    pub id: String,
    /// The publishing agency.
    pub publisher: AgencyId,
    /// The publication time (at the store's precision).
    pub at: OffsetDateTime,
    /// The validated content.
    pub result: SpotCheckResult,
    /// Its category (index into [`CATEGORIES`]).
    pub category: usize,
}

/// The agency `i` (index into [`AGENCIES`]).
pub fn agency(i: usize) -> AgencyId {
    match AgencyId::parse(AGENCIES[i % AGENCIES.len()].0) {
        Ok(a) => a,
        Err(e) => unreachable!("the corpus's agency ids are valid: {e}"),
    }
}

/// The USCC of producer `k` (`0..PRODUCERS`) and its region.
pub fn producer(k: u64) -> (String, String) {
    let region = region(k, 0);
    (uscc(&region, k), region)
}

/// A valid USCC (GB 32100) of an enterprise registered in `region`, distinct per `serial`.
fn uscc(region: &str, serial: u64) -> String {
    let body = format!("91{region}{:09}", serial % 1_000_000_000);
    // A body of 17 valid characters always has a check character.
    let check = check_character(&body).unwrap_or('0');
    format!("{body}{check}")
}

/// A county-level GB/T 2260 code of one of the provinces, spread by `k`.
fn region(k: u64, salt: u64) -> String {
    let h = mix(k ^ salt.wrapping_mul(0x9e37_79b9));
    let province = PROVINCES[(h % PROVINCES.len() as u64) as usize];
    let city = 1 + (h >> 8) % 5;
    let county = 1 + (h >> 16) % 9;
    format!("{province}{city:02}{county:02}")
}

/// SplitMix64: a well-spread 64-bit hash of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Corpus {
    /// `count` results over `years` years up to `end`.
    pub fn new(count: u64, end: OffsetDateTime, years: u32) -> Corpus {
        Corpus {
            count,
            end,
            span: Duration::days(365 * i64::from(years)),
        }
    }

    /// When the `n`-th result was published: evenly spread, the last at `end`.
    pub fn published_at(&self, n: u64) -> OffsetDateTime {
        let span_us = self.span.whole_microseconds();
        let count = i128::from(self.count.max(1));
        let back = span_us * (count - 1 - i128::from(n.min(self.count.saturating_sub(1)))) / count;
        let back = i64::try_from(back).unwrap_or(i64::MAX);
        stored_precision(self.end - Duration::microseconds(back))
    }

    /// The producer of the `n`-th result (`0..PRODUCERS`): skewed, so that a few producers
    /// have hundreds of results and most a few dozen.
    pub fn producer_of(&self, n: u64) -> u64 {
        let u = (mix(n ^ 0x5eed) % 1_000_000) as f64 / 1_000_000.0;
        ((u * u * PRODUCERS as f64) as u64).min(PRODUCERS - 1)
    }

    /// The publishing agency of the `n`-th result (index into [`AGENCIES`]).
    pub fn agency_of(&self, n: u64) -> usize {
        let mut roll = mix(n ^ 0xa9e) % 100;
        for (i, (_, share)) in AGENCIES.iter().enumerate() {
            if roll < *share {
                return i;
            }
            roll -= share;
        }
        AGENCIES.len() - 1
    }

    /// The `n`-th result.
    pub fn result(&self, n: u64) -> Result<Synthetic, FieldErrors> {
        let h = mix(n);
        let at = self.published_at(n);
        let today = china_date(at);
        let sampled = today - Duration::days(7 + (h % 54) as i64);
        let reported = sampled + Duration::days(1 + (h >> 8) as i64 % 5);
        let produced = sampled - Duration::days(30 + (h >> 12) as i64 % 300);
        let category_index = (mix(n ^ 0xca7) % CATEGORIES.len() as u64) as usize;
        let category = CATEGORIES[category_index];
        let product = category.products[(h >> 20) as usize % category.products.len()];
        let brand = format!(
            "{}{}",
            BRAND_FIRST[(h >> 24) as usize % BRAND_FIRST.len()],
            BRAND_SECOND[(h >> 32) as usize % BRAND_SECOND.len()]
        );
        let non_conforming = mix(n ^ 0xbad) % 1000 < category.non_conforming_per_mille;
        let verdict = if non_conforming { 2 } else { 1 };
        let publisher = self.agency_of(n);
        let (producer_uscc, producer_region) = producer(self.producer_of(n));
        let online = (h >> 40) % 2 == 0;
        let seller_serial = mix(n ^ 0x5e11) % SELLERS;
        let seller_region = region(seller_serial, 3);
        let seller = if online {
            SellerInput {
                name: format!("{brand}旗舰店经营有限公司"),
                uscc: uscc(&seller_region, 500_000_000 + seller_serial),
                address: String::new(),
                region_code: seller_region,
                platform: PLATFORMS[(seller_serial % 4) as usize].into(),
                shop_name: format!("{brand}官方旗舰店"),
                shop_url: format!("https://shop.example.com/{seller_serial}"),
            }
        } else {
            SellerInput {
                name: format!("某商场{}", seller_serial % 1000),
                uscc: String::new(),
                address: "某路88号".into(),
                region_code: seller_region,
                ..SellerInput::default()
            }
        };
        let item = "标识";
        let campaign_year = sampled.year();
        let input = ResultInput {
            product: Some(ProductInput {
                name: format!("{brand}{product}"),
                trademark: brand.clone(),
                model: format!("{}-{}", brand.len(), (h >> 44) % 500),
                production_date: format_date(produced),
                batch_number: format!("B{}", (h >> 48) % 100_000),
                category: category.name.into(),
            }),
            producer: Some(ProducerInput {
                name: format!("{brand}制造有限公司"),
                address: "某工业园1号".into(),
                uscc: producer_uscc,
                region_code: producer_region,
            }),
            seller: Some(seller),
            sampling_way: if online { 1 } else { 2 },
            sampling_date: format_date(sampled),
            inspection_body: "某质量监督检验技术研究院".into(),
            report_number: format!("SYN-{n}"),
            report_date: format_date(reported),
            standards: vec!["GB/T 1234-2020".into()],
            test_items: vec![TestItemInput {
                name: item.into(),
                requirement: "应符合标准要求".into(),
                measured_value: if non_conforming {
                    "不符合"
                } else {
                    "符合"
                }
                .into(),
                unit: String::new(),
                verdict,
                is_safety_item: false,
            }],
            verdict,
            failed_items: if non_conforming {
                vec![item.into()]
            } else {
                Vec::new()
            },
            campaign: Some(CampaignInput {
                code: format!("{campaign_year}-{}", AGENCIES[publisher].0),
                name: format!("{campaign_year}年产品质量监督抽查"),
                kind: 2,
                product_kind: category.name.into(),
            }),
            attachments: Vec::new(),
        };
        let result = SpotCheckResult::parse(input, today)?;
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&n.to_be_bytes());
        random[8..].copy_from_slice(&(h as u16).to_be_bytes());
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(millis, &random)
            .into_uuid()
            .simple()
            .to_string();
        Ok(Synthetic {
            id,
            publisher: agency(publisher),
            at,
            result,
            category: category_index,
        })
    }

    /// The day the `n`-th result was sampled (without building it).
    pub fn sampled_on(&self, n: u64) -> Date {
        china_date(self.published_at(n)) - Duration::days(7 + (mix(n) % 54) as i64)
    }
}

//! The wire form of a spot-check result and the domain's, both ways.
//!
//! The contract (`spotcheck.proto`) is the authority on field names, and the domain's
//! [`ResultInput`] mirrors it field for field, so this module is a plain copy in each
//! direction. Output-only fields are never read from the wire; [`content_of`] builds the
//! content-only message that is stored as a version's body, and the handler adds the output
//! fields when it answers.

use yrd_domain::spotcheck::{
    AttachmentInput, CampaignInput, ItemVerdict, ProducerInput, ProductInput, ResultInput,
    SellerInput, SpotCheckResult, TestItemInput,
};
use yrd_proto::v1 as pb;

/// The untyped domain input of a wire result (its content fields only).
pub fn input_of(r: &pb::SpotCheckResult) -> ResultInput {
    ResultInput {
        product: r.product.as_ref().map(|p| ProductInput {
            name: p.name.clone(),
            trademark: p.trademark.clone(),
            model: p.model.clone(),
            production_date: p.production_date.clone(),
            batch_number: p.batch_number.clone(),
            category: p.category.clone(),
        }),
        producer: r.producer.as_ref().map(|p| ProducerInput {
            name: p.name.clone(),
            address: p.address.clone(),
            uscc: p.uscc.clone(),
            region_code: p.region_code.clone(),
        }),
        seller: r.seller.as_ref().map(|s| SellerInput {
            name: s.name.clone(),
            uscc: s.uscc.clone(),
            address: s.address.clone(),
            region_code: s.region_code.clone(),
            platform: s.platform.clone(),
            shop_name: s.shop_name.clone(),
            shop_url: s.shop_url.clone(),
        }),
        sampling_way: r.sampling_way,
        sampling_date: r.sampling_date.clone(),
        inspection_body: r.inspection_body.clone(),
        report_number: r.report_number.clone(),
        report_date: r.report_date.clone(),
        standards: r.standards.clone(),
        test_items: r
            .test_items
            .iter()
            .map(|t| TestItemInput {
                name: t.name.clone(),
                requirement: t.requirement.clone(),
                measured_value: t.measured_value.clone(),
                unit: t.unit.clone(),
                verdict: t.verdict,
                is_safety_item: t.is_safety_item,
            })
            .collect(),
        verdict: r.verdict,
        failed_items: r.failed_items.clone(),
        campaign: r.campaign.as_ref().map(|c| CampaignInput {
            code: c.code.clone(),
            name: c.name.clone(),
            kind: c.kind,
            product_kind: c.product_kind.clone(),
        }),
        attachments: r
            .attachments
            .iter()
            .map(|a| AttachmentInput {
                file_name: a.file_name.clone(),
                media_type: a.media_type.clone(),
                sha256: a.sha256.clone(),
                size_bytes: a.size_bytes,
                description: a.description.clone(),
            })
            .collect(),
    }
}

/// The content-only wire message of a validated result, in its normalised spelling (trimmed,
/// "/" as none, lower-case digests): what a version stores and every answer starts from.
pub fn content_of(result: &SpotCheckResult) -> pb::SpotCheckResult {
    let i = ResultInput::from(result);
    pb::SpotCheckResult {
        product: i.product.map(|p| pb::Product {
            name: p.name,
            trademark: p.trademark,
            model: p.model,
            production_date: p.production_date,
            batch_number: p.batch_number,
            category: p.category,
        }),
        producer: i.producer.map(|p| pb::Party {
            name: p.name,
            uscc: p.uscc,
            address: p.address,
            region_code: p.region_code,
        }),
        seller: i.seller.map(|s| pb::Seller {
            name: s.name,
            uscc: s.uscc,
            address: s.address,
            region_code: s.region_code,
            platform: s.platform,
            shop_name: s.shop_name,
            shop_url: s.shop_url,
        }),
        sampling_way: i.sampling_way,
        sampling_date: i.sampling_date,
        inspection_body: i.inspection_body,
        report_number: i.report_number,
        report_date: i.report_date,
        standards: i.standards,
        test_items: i
            .test_items
            .into_iter()
            .map(|t| pb::TestItem {
                name: t.name,
                requirement: t.requirement,
                measured_value: t.measured_value,
                unit: t.unit,
                verdict: t.verdict,
                is_safety_item: t.is_safety_item,
            })
            .collect(),
        verdict: i.verdict,
        failed_items: i.failed_items,
        campaign: i.campaign.map(|c| pb::Campaign {
            code: c.code,
            name: c.name,
            kind: c.kind,
            product_kind: c.product_kind,
        }),
        attachments: i
            .attachments
            .into_iter()
            .map(|a| pb::Attachment {
                file_name: a.file_name,
                media_type: a.media_type,
                sha256: a.sha256,
                size_bytes: a.size_bytes,
                description: a.description,
            })
            .collect(),
        ..Default::default()
    }
}

/// Whether any failed test item of a stored (already validated) content is a safety item.
pub fn safety_item_failed(content: &pb::SpotCheckResult) -> bool {
    content.test_items.iter().any(|t| {
        t.is_safety_item && ItemVerdict::from_wire(t.verdict) == Some(ItemVerdict::NonConforming)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> pb::SpotCheckResult {
        pb::SpotCheckResult {
            product: Some(pb::Product {
                name: " 儿童滑板车 ".into(),
                trademark: "/".into(),
                production_date: "2024-03-01".into(),
                batch_number: "B1".into(),
                ..Default::default()
            }),
            producer: Some(pb::Party {
                name: "某厂".into(),
                uscc: "91330100799655058B".into(),
                address: "杭州".into(),
                region_code: "330106".into(),
            }),
            seller: Some(pb::Seller {
                name: "某店".into(),
                region_code: "310104".into(),
                ..Default::default()
            }),
            sampling_way: pb::SamplingWay::OnSite as i32,
            sampling_date: "2024-05-01".into(),
            inspection_body: "某院".into(),
            report_number: "R1".into(),
            report_date: "2024-05-20".into(),
            standards: vec!["GB 6675.1-2014".into()],
            test_items: vec![pb::TestItem {
                name: "锐边".into(),
                requirement: "无".into(),
                measured_value: "有".into(),
                unit: "mm".into(),
                verdict: pb::Verdict::NonConforming as i32,
                is_safety_item: true,
            }],
            verdict: pb::Verdict::NonConforming as i32,
            failed_items: vec!["锐边".into()],
            campaign: Some(pb::Campaign {
                code: "C1".into(),
                name: "专项".into(),
                kind: pb::CampaignKind::DeltaJoint as i32,
                product_kind: "儿童玩具".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn content_round_trips_in_normalised_spelling() {
        let today = time::macros::date!(2024 - 06 - 30);
        let parsed = SpotCheckResult::parse(input_of(&sample()), today).unwrap();
        assert!(
            parsed.is_delta_joint(),
            "proto DELTA_JOINT is the domain's Delta joint kind"
        );
        let content = content_of(&parsed);
        assert_eq!(content.product.as_ref().unwrap().name, "儿童滑板车");
        assert_eq!(content.product.as_ref().unwrap().trademark, "");
        assert_eq!(content.test_items[0].unit, "mm");
        assert!(safety_item_failed(&content));
        let again = SpotCheckResult::parse(input_of(&content), today).unwrap();
        assert_eq!(again, parsed);
    }
}

-- The agencies of a case (串案) are reacting agencies of every referral of its results, stored
-- in `referral_reactors` like a reaction (docs/cases.md "What the agencies see"): the links
-- made before this migration get their rows here; later links and referrals write them.
INSERT INTO referral_reactors (referral_id, agency, created_at)
SELECT r.id, a.agency, m.linked_at FROM case_results m
JOIN referrals r ON r.result_id = m.result_id
JOIN (SELECT case_id, publisher AS agency FROM case_results
      UNION SELECT id AS case_id, handling_agency AS agency FROM cases
      WHERE handling_agency IS NOT NULL) a ON a.case_id = m.case_id
WHERE a.agency <> r.sampling_agency AND a.agency <> r.handling_agency
ON CONFLICT (referral_id, agency) DO NOTHING;

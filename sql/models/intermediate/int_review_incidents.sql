-- Which incidents each post-incident review reviews. A PagerDuty review belongs to its
-- incident. A Jira review names its incidents in the fields and text the KPI rules list, its
-- own or those of the issues it is linked to by the rules' link types (e.g. the Jira issue
-- PagerDuty's integration made for the incident): a field whose whole value is an incident's
-- id or number, or any id or number the rules' patterns find. Only incidents PagerDuty has
-- are kept, so a pattern's stray match names nothing. A linked issue that is itself a review
-- names nothing: a postmortem that "relates to" an earlier postmortem reviews its own incident,
-- not the earlier one's. A review done before an incident was triggered was written about
-- something else (an earlier incident it cites), so it does not review it. An incident merged
-- into another (PagerDuty's merge) is reviewed as the incident it was merged into, which holds
-- its alerts from then on.
with rules as (
    select * from {{ source('raw', 'config__kpi_rules') }}
),

issues as (
    select issue_id, summary, description, custom_fields, issue_links from {{ ref('stg_jira__issues') }}
),

reviews as (
    select * from {{ ref('int_post_incident_reviews') }}
),

links as (
    select issue_id as from_issue_id, unnest(issue_links) as link from issues
),

-- The issues whose content may name a review's incidents.
named_in as (
    select review_id, jira_issue_id as issue_id, 'review' as via
    from reviews
    where source = 'jira'
    union all
    select reviews.review_id, links.link.issue_id, 'issue_link'
    from reviews
    inner join links on links.from_issue_id = reviews.jira_issue_id
    cross join rules
    where {{ link_is_one_of('links.link', 'rules.incident_link_issue_link_types') }}
        and not exists (select 1 from reviews as linked_reviews where linked_reviews.jira_issue_id = links.link.issue_id)
),

field_names as (
    select unnest(incident_link_fields) as field from rules
),

text_field_names as (
    select unnest(incident_link_text_fields) as field from rules
),

texts as (
    select named_in.review_id, named_in.via, 'field' as kind,
        json_extract_string(issues.custom_fields[field_names.field], '$') as text
    from named_in
    inner join issues using (issue_id)
    cross join field_names
    union all
    select named_in.review_id, named_in.via, 'text',
        case text_field_names.field
            when 'summary' then issues.summary
            when 'description' then issues.description::varchar
            else json_extract_string(issues.custom_fields[text_field_names.field], '$')
        end
    from named_in
    inner join issues using (issue_id)
    cross join text_field_names
),

patterns as (
    select 'id' as ref_kind, unnest(incident_id_patterns) as pattern from rules
    union all
    select 'number', unnest(incident_number_patterns) from rules
),

refs as (
    select texts.review_id, texts.via, texts.kind, patterns.ref_kind,
        unnest(regexp_extract_all(texts.text, patterns.pattern, 1)) as ref
    from texts
    cross join patterns
    where texts.text is not null
    union all
    -- A field whose whole value is an id (letters and digits) or a number (#1234 or 1234, or
    -- 1234.0: Jira writes a Number field's value as a JSON float); a number's ref is its digits
    -- before any point.
    select review_id, via, kind,
        case when regexp_full_match(trim(text), '#?\s*[0-9]+(\.0*)?') then 'number' else 'id' end,
        case when regexp_full_match(trim(text), '#?\s*[0-9]+(\.0*)?') then regexp_extract(text, '[0-9]+')
             else trim(text) end
    from texts
    where kind = 'field' and regexp_full_match(trim(text), '[A-Z0-9]{6,20}|#?\s*[0-9]+(\.0*)?')
),

incidents as (
    select incident_id, incident_number, created_at, merged_into_incident_id from {{ ref('stg_pagerduty__incidents') }}
),

-- Each incident's survivor: itself, else the incident it was merged into, followed through a
-- merge of that one too (a bounded walk, so a cycle in broken data ends).
merges as (
    with recursive chain(incident_id, survivor_id, depth) as (
        select incident_id, incident_id, 0 from incidents
        union all
        select chain.incident_id, incidents.merged_into_incident_id, chain.depth + 1
        from chain
        inner join incidents on incidents.incident_id = chain.survivor_id
        where incidents.merged_into_incident_id is not null and chain.depth < 20
    )
    select incident_id, arg_max(survivor_id, depth) as survivor_id from chain group by incident_id
),

named as (
    select refs.review_id, incidents.incident_id, refs.via, refs.kind
    from refs
    inner join incidents on refs.ref_kind = 'id' and incidents.incident_id = refs.ref
    union all
    select refs.review_id, incidents.incident_id, refs.via, refs.kind
    from refs
    inner join incidents on refs.ref_kind = 'number' and incidents.incident_number = try_cast(refs.ref as integer)
),

-- How the link was found, the most direct way first (rank).
pairs as (
    select review_id, incident_id,
        case when via = 'issue_link' then 'issue_link' else kind end as linked_by,
        case when via = 'issue_link' then 3 when kind = 'field' then 1 else 2 end as rank
    from named
    union all
    select review_id, pagerduty_incident_id, 'pagerduty', 0
    from reviews
    where source = 'pagerduty'
)

select
    pairs.review_id,
    coalesce(merges.survivor_id, pairs.incident_id) as incident_id,
    arg_min(pairs.linked_by, pairs.rank) as linked_by
from pairs
inner join reviews using (review_id)
left join incidents on incidents.incident_id = pairs.incident_id
left join merges on merges.incident_id = pairs.incident_id
where not coalesce(reviews.done_at < incidents.created_at, false)
group by 1, 2

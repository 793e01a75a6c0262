{{ config(
    materialized='incremental',
    incremental_strategy='replace_months',
    partition_column='period_month',
) }}

with org_units as (
    select * from {{ ref('int_hr_org_unit_teams') }}
),

headcount as (
    select * from {{ ref('int_team_month_headcount') }}
),

-- Average headcount over the month: the mean of its opening snapshot and the next month's
-- (the month's closing headcount); the last month has only its opening snapshot.
average_headcount as (
    select
        team,
        period_month,
        case when lead(period_month) over by_team = period_month + interval 1 month
            then (headcount + lead(headcount) over by_team) / 2 else headcount end as avg_headcount,
        case when lead(period_month) over by_team = period_month + interval 1 month
            then (critical_headcount + lead(critical_headcount) over by_team) / 2 else critical_headcount
        end as avg_critical_headcount
    from headcount
    window by_team as (partition by team order by period_month)
),

leavers as (
    select
        org_units.team,
        date_trunc('month', termination_date)::date as period_month,
        count(*) filter (where is_voluntary) as voluntary_leavers,
        count(*) filter (where is_voluntary and is_critical_role) as critical_voluntary_leavers
    from {{ ref('stg_hr__terminations') }}
    inner join org_units using (org_unit)
    group by all
),

incidents as (
    select
        team,
        period_month,
        count(*) as incidents,
        count(*) filter (where is_open) as open_incidents,
        count(*) filter (where is_auto_resolved) as auto_resolved_incidents,
        count(*) filter (where reopen_count > 0) as reopened_incidents,
        count(ttr_seconds) as n_ttr,
        median(ttr_seconds) as ttr_median_seconds,
        quantile_cont(ttr_seconds, 0.9) as ttr_p90_seconds,
        avg(ttr_seconds) as ttr_mean_seconds,
        count(tta_seconds) as n_tta,
        median(tta_seconds) as tta_median_seconds,
        quantile_cont(tta_seconds, 0.9) as tta_p90_seconds,
        avg(tta_seconds) as tta_mean_seconds,
        count(tta_seconds) / count(*) as acknowledged_share,
        count(ttd_seconds) as n_ttd,
        median(ttd_seconds) as ttd_median_seconds,
        quantile_cont(ttd_seconds, 0.9) as ttd_p90_seconds,
        avg(ttd_seconds) as ttd_mean_seconds,
        count(ttd_seconds) / count(*) as onset_known_share
    from {{ ref('fct_incidents') }}
    where team is not null
    group by all
),

tickets as (
    select
        team,
        period_month,
        count(*) filter (where ticket_class = 'proactive') as proactive_tickets,
        count(*) filter (where ticket_class = 'reactive') as reactive_tickets,
        count(*) filter (where ticket_class = 'unclassified') as unclassified_tickets
    from {{ ref('fct_tickets') }}
    where team is not null
    group by all
),

-- Learning from errors: high-urgency incidents resolved (reviewable) and reviewed, and how
-- long from the resolve to a review done; action items of reviews; repeat incidents.
reviews as (
    select
        incidents.team,
        incidents.period_month,
        count(*) as reviewable_incidents,
        count(reviewed.incident_id) as reviewed_incidents,
        count(reviewed.review_done_at) as n_reviews_done,
        median(reviewed.days_to_review_done) as review_done_median_days
    from {{ ref('fct_incidents') }} as incidents
    left join {{ ref('fct_incident_reviews') }} as reviewed using (incident_id)
    where incidents.team is not null and incidents.urgency = 'high' and not incidents.is_open
    group by all
),

action_items as (
    select
        team,
        period_month,
        count(*) as action_items,
        count(*) filter (where is_due) as action_items_due,
        count(*) filter (where is_due and is_closed_in_time) as action_items_closed_in_time,
        count(closed_at) as n_action_items_closed,
        median(days_to_close) as action_item_close_median_days
    from {{ ref('fct_review_action_items') }}
    where team is not null
    group by all
),

repeats as (
    select team, period_month, count(*) as repeat_incidents
    from {{ ref('fct_incident_repeats') }}
    where team is not null
    group by all
),

-- Speaking up: who raised the team's proactive tickets, as far as the identity map tells.
speaking_up as (
    select
        tickets.team,
        tickets.period_month,
        count(reporters.issue_id) as proactive_tickets_reporter_known,
        count(*) filter (where reporters.reporter_team <> tickets.team) as cross_team_proactive_tickets,
        count(*) filter (where reporters.reporter_team = tickets.team and reporters.is_junior)
            as junior_proactive_tickets
    from {{ ref('fct_tickets') }} as tickets
    left join {{ ref('int_ticket_reporters') }} as reporters using (issue_id)
    where tickets.team is not null and tickets.ticket_class = 'proactive'
    group by all
),

-- Without an identity map no reporter is known: the speaking-up counts are absent, not 0.
identity_map as (
    select count(*) > 0 as is_loaded from {{ ref('stg_config__identity_map') }}
),

-- A source adopted after the history start (PagerDuty or Jira first used later than the HR
-- and survey history) has no data, not zero events, in the months before it: a month counts
-- a source's events only from the source's first record on (organisation-wide: the first
-- month in which any team has one). A source with no record at all counts in no month.
source_starts as (
    select
        (select min(period_month) from {{ ref('fct_incidents') }} where team is not null) as pagerduty_start,
        (select min(period_month) from {{ ref('fct_tickets') }} where team is not null) as jira_start
),

-- The team-months: every month an org unit of the team has a headcount snapshot, from the
-- history start on (the API syncs start there, so earlier months would count no incidents),
-- and whether each source counts in the month (source_starts).
team_months as (
    select distinct
        team,
        period_month,
        coalesce(period_month >= source_starts.pagerduty_start, false) as has_pagerduty,
        coalesce(period_month >= source_starts.jira_start, false) as has_jira
    from headcount
    cross join source_starts
    where period_month >= '{{ var("history_start") }}'::date
),

-- Safety and accountability as carried forward for every scale (fct_team_month_survey_scores).
lagged_scores as (
    select
        team,
        period_month,
        bool_or(is_wave_stale) filter (where scale = 'psychological_safety') as is_safety_wave_stale,
        any_value(wave_quarter) filter (where scale = 'psychological_safety') as safety_wave_quarter,
        any_value(n_respondents) filter (where scale = 'psychological_safety') as safety_n_respondents,
        any_value(score_lagged) filter (where scale = 'psychological_safety') as safety_lagged,
        any_value(wave_quarter) filter (where scale = 'accountability') as accountability_wave_quarter,
        any_value(n_respondents) filter (where scale = 'accountability') as accountability_n_respondents,
        any_value(score_lagged) filter (where scale = 'accountability') as accountability_lagged
    from {{ ref('fct_team_month_survey_scores') }}
    group by team, period_month
),

kpis as (
    select
        team_months.team,
        team_months.period_month,
        coalesce(headcount.headcount, 0) as headcount,
        coalesce(headcount.critical_headcount, 0) as critical_headcount,
        coalesce(leavers.voluntary_leavers, 0) as voluntary_leavers,
        coalesce(leavers.critical_voluntary_leavers, 0) as critical_voluntary_leavers,
        average_headcount.avg_headcount,
        average_headcount.avg_critical_headcount,
        coalesce(leavers.voluntary_leavers, 0) / nullif(average_headcount.avg_headcount, 0) as voluntary_attrition_rate,
        coalesce(leavers.critical_voluntary_leavers, 0) / nullif(average_headcount.avg_critical_headcount, 0)
            as critical_attrition_rate,
        case when has_pagerduty then coalesce(incidents.incidents, 0) end as incidents,
        case when has_pagerduty then coalesce(incidents.n_ttr, 0) end as n_ttr,
        incidents.ttr_median_seconds,
        incidents.ttr_p90_seconds,
        incidents.ttr_mean_seconds,
        case when has_pagerduty then coalesce(incidents.n_tta, 0) end as n_tta,
        incidents.tta_median_seconds,
        incidents.tta_p90_seconds,
        incidents.tta_mean_seconds,
        incidents.acknowledged_share,
        case when has_pagerduty then coalesce(incidents.n_ttd, 0) end as n_ttd,
        incidents.ttd_median_seconds,
        incidents.ttd_p90_seconds,
        incidents.ttd_mean_seconds,
        incidents.onset_known_share,
        case when has_pagerduty then coalesce(incidents.open_incidents, 0) end as open_incidents,
        case when has_pagerduty then coalesce(incidents.auto_resolved_incidents, 0) end as auto_resolved_incidents,
        case when has_pagerduty then coalesce(incidents.reopened_incidents, 0) end as reopened_incidents,
        case when has_jira then coalesce(tickets.proactive_tickets, 0) end as proactive_tickets,
        case when has_jira then coalesce(tickets.reactive_tickets, 0) end as reactive_tickets,
        case when has_jira then coalesce(tickets.unclassified_tickets, 0) end as unclassified_tickets,
        tickets.proactive_tickets / nullif(tickets.proactive_tickets + tickets.reactive_tickets, 0) as proactive_share,
        case when has_pagerduty then coalesce(reviews.reviewable_incidents, 0) end as reviewable_incidents,
        case when has_pagerduty then coalesce(reviews.reviewed_incidents, 0) end as reviewed_incidents,
        reviews.reviewed_incidents / nullif(reviews.reviewable_incidents, 0) as review_share,
        case when has_pagerduty then coalesce(reviews.n_reviews_done, 0) end as n_reviews_done,
        reviews.review_done_median_days,
        case when has_pagerduty then coalesce(action_items.action_items, 0) end as action_items,
        case when has_pagerduty then coalesce(action_items.action_items_due, 0) end as action_items_due,
        case when has_pagerduty then coalesce(action_items.action_items_closed_in_time, 0) end
            as action_items_closed_in_time,
        action_items.action_items_closed_in_time / nullif(action_items.action_items_due, 0)
            as action_items_closed_in_time_share,
        case when has_pagerduty then coalesce(action_items.n_action_items_closed, 0) end as n_action_items_closed,
        action_items.action_item_close_median_days,
        case when has_pagerduty then coalesce(repeats.repeat_incidents, 0) end as repeat_incidents,
        coalesce(repeats.repeat_incidents, 0) / nullif(incidents.incidents, 0) as repeat_share,
        coalesce(headcount.junior_headcount, 0) as junior_headcount,
        case when identity_map.is_loaded and has_jira then coalesce(speaking_up.proactive_tickets_reporter_known, 0) end
            as proactive_tickets_reporter_known,
        case when identity_map.is_loaded and has_jira then coalesce(speaking_up.cross_team_proactive_tickets, 0) end
            as cross_team_proactive_tickets,
        case when identity_map.is_loaded and has_jira then coalesce(speaking_up.junior_proactive_tickets, 0) end
            as junior_proactive_tickets,
        lagged_scores.safety_wave_quarter,
        lagged_scores.safety_n_respondents,
        lagged_scores.safety_lagged,
        coalesce(lagged_scores.is_safety_wave_stale, false) as is_safety_wave_stale,
        lagged_scores.accountability_wave_quarter,
        lagged_scores.accountability_n_respondents,
        lagged_scores.accountability_lagged
    from team_months
    left join headcount using (team, period_month)
    left join average_headcount using (team, period_month)
    left join leavers using (team, period_month)
    left join incidents using (team, period_month)
    left join tickets using (team, period_month)
    left join reviews using (team, period_month)
    left join action_items using (team, period_month)
    left join repeats using (team, period_month)
    left join speaking_up using (team, period_month)
    left join lagged_scores using (team, period_month)
    cross join identity_map
)

select * from kpis
{{ in_partition_window('period_month') }}

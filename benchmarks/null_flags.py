"""Print how often an organisation in which safety, accountability and Clark's stages have no
effect on any KPI still gets a finding the report calls "unlikely to be chance":

- the whole results table as the models asset fits it (safety, safety x accountability, each
  of Clark's stages: ``inputs.score_models``), one Benjamini-Hochberg correction over every main
  row, as the report reads it: organisations with any q < 0.05, and how often single rows'
  p fall below 0.05 and 0.001;
- the KPI correlation table (``correlation_table``): organisations with any q < 0.05 in either
  column, and with any sentence that states a direction (``correlation_sentence``).

Every organisation is generated with every effect of GroundTruth at 0 (``NULL_TRUTH``) and, unless
--size-confounder, no link from team size to safety either, so that the correlation table's plain
r is null too. Safety is the latent team score (``truth_frames.org_frames``), as in
tests/test_recovery.py and benchmarks/model_recovery.py: no survey, no pipeline run. This is the
figure docs/metrics.md and the report's results section quote for the report's configuration
(the demo's 30 teams x 24 months).

    .venv/bin/python benchmarks/null_flags.py [--seeds 40] [--first-seed 2000] [--teams 30] [--months 24]
"""

import argparse
import sys
import time
import warnings
from dataclasses import replace

import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from assets.models.assets import correlation_table
from assets.models.design import SCORES
from assets.models.inputs import score_models
from assets.models.stats import FALSE_DISCOVERY_RATE, kpi_safety_effects
from assets.report.wording import correlation_sentence
from pipelines.synthetic.org import OrgSpec, generate
from pipelines.synthetic.truth_frames import NULL_TRUTH, org_frames


def share(flagged: int, total: int) -> str:
    low, high = proportion_confint(flagged, total, method="wilson")
    return f"{flagged} of {total} ({flagged / total:.0%}, 95% CI {low:.0%} to {high:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--size-confounder", action="store_true",
                        help="keep the generator's link from team size to safety (the plain r is then not null)")
    args = parser.parse_args()
    # statsmodels' fit warnings are already turned into the table's warnings column.
    warnings.simplefilter("ignore")
    truth = NULL_TRUTH if args.size_confounder else replace(NULL_TRUTH, safety_per_sd_log_headcount=0.0)
    models = score_models(list(SCORES.values()))
    results, correlations, started = [], [], time.monotonic()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for done, seed in enumerate(seeds, start=1):
        months, incidents = org_frames(generate(OrgSpec(seed=seed, n_teams=args.teams, n_months=args.months), truth))
        # org_frames has no incident counts behind each median: every incident stands behind it.
        months = months.assign(n_ttr=months["incidents"], n_tta=months["incidents"])
        table = kpi_safety_effects(months, incidents, models=models)
        results.append(table[table["role"] == "main"].assign(seed=seed))
        table = correlation_table(months.rename(columns={"safety_z": "safety_lagged"}))
        directions = [("safer teams had" in correlation_sentence(row)) for row in table.itertuples()]
        correlations.append(table.assign(seed=seed, states_direction=directions))
        print(f"\r{done}/{len(seeds)} organisations ({time.monotonic() - started:.0f} s)", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    results, correlations = pd.concat(results), pd.concat(correlations)
    where = (f"{args.seeds} null organisations of {args.teams} teams x {args.months} months (seeds {seeds.start} to "
             f"{seeds.stop - 1}{', size confounder kept' if args.size_confounder else ''})")
    print(where)

    tested = results.dropna(subset=["p_value"])
    per_seed = results.groupby("seed")["q_value"].apply(lambda q: int((q < FALSE_DISCOVERY_RATE).sum()))
    print(f"\nResults table (one BH over {tested.groupby('seed').size().median():.0f} tested main rows per "
          "organisation):")
    print(f"  organisations with any q < {FALSE_DISCOVERY_RATE}: {share(int((per_seed > 0).sum()), len(per_seed))}")
    print(f"  rows with p < 0.05: {(tested['p_value'] < 0.05).mean():.1%}, p < 0.001: "
          f"{(tested['p_value'] < 0.001).mean():.2%} of {len(tested)}")
    flagged = results[results["q_value"] < FALSE_DISCOVERY_RATE]
    for row in flagged.itertuples():
        print(f"    seed {row.seed}: {row.kpi} | {row.construct}: p {row.p_value:.2g}, q {row.q_value:.3f}")

    print("\nCorrelation table (one BH over the plain and the size-adjusted r of every KPI):")
    any_q = correlations.groupby("seed").apply(
        lambda t: bool(((t["q_value"] < FALSE_DISCOVERY_RATE) | (t["size_adjusted_q_value"] < FALSE_DISCOVERY_RATE))
                       .any()), include_groups=False)
    stated = correlations.groupby("seed")["states_direction"].any()
    print(f"  organisations with any q < {FALSE_DISCOVERY_RATE}: {share(int(any_q.sum()), len(any_q))}")
    print(f"  organisations with a sentence stating a direction: {share(int(stated.sum()), len(stated))}")
    for column in ("p_value", "size_adjusted_p_value"):
        print(f"  {column} < 0.05: {(correlations[column].dropna() < 0.05).mean():.1%} of "
              f"{correlations[column].notna().sum()}")


if __name__ == "__main__":
    main()

"""Print how often the results table's 95% intervals cover the generator's true effects, per
KPI x construct, over many seeded organisations:

- on the latent safety (no measurement error): the plain estimates' coverage;
- on the measured safety (survey team-wave means, as the warehouse computes them): the plain
  estimates' mean share of the truth (attenuation) and coverage, next to the
  reliability-corrected estimates' share and coverage (the truth in the corrected estimates'
  unit: the effect per SD of the organisation's true team-wave safety);
- how often a null organisation (every safety effect 0) gets any BH-significant cell;
- the smallest effect detectable at 80% power, per KPI x construct (median over seeds).

    .venv/bin/python benchmarks/model_recovery.py [--seeds 50] [--null-seeds 40] [--teams 40] [--months 12]
"""

import argparse
import sys
import time
import warnings

import pandas as pd

from pipelines.synthetic.model import GroundTruth
from pipelines.synthetic.truth_frames import NULL_TRUTH, measured_results, results, truths


def covered(table: pd.DataFrame, low: str, high: str) -> pd.Series:
    return (table[low] <= table["truth"]) & (table["truth"] <= table[high])


def sweep(fit, seeds: range, label: str, **kwargs) -> pd.DataFrame:
    tables, started = [], time.monotonic()
    for done, seed in enumerate(seeds, start=1):
        tables.append(fit(seed, **kwargs).assign(seed=seed))
        print(f"\r{label}: {done}/{len(seeds)} organisations ({time.monotonic() - started:.0f} s)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    table = pd.concat(tables).query("role == 'main'")
    return table.assign(truth=table["kpi"].map(truths(GroundTruth())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--null-seeds", type=int, default=40)
    parser.add_argument("--teams", type=int, default=40)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    # statsmodels' fit warnings are already turned into the table's warnings column.
    warnings.simplefilter("ignore")
    size = {"n_teams": args.teams, "n_months": args.months}
    where = f"{args.seeds} organisations of {args.teams} teams x {args.months} months"

    latent = sweep(results, range(args.seeds), "latent safety", **size).dropna(subset=["estimate"])
    latent = latent.assign(covered=covered(latent, "ci_low", "ci_high"))
    summary = latent.groupby(["kpi", "construct"]).agg(
        truth=("truth", "first"), mean_estimate=("estimate", "mean"), coverage=("covered", "mean"),
        detectable=("min_detectable_effect", "median"), fits=("estimate", "size"))
    print(f"\nLatent safety (no measurement error): 95% CI coverage over {where}")
    print(summary.round(3).to_string())
    print(f"overall coverage {latent['covered'].mean():.3f} of {len(latent)} intervals")

    measured = sweep(measured_results, range(args.seeds), "measured safety", **size).dropna(subset=["estimate"])
    # The corrected estimates are per SD of this organisation's true team-wave safety.
    measured = measured.assign(truth=measured["truth"] * measured["latent_sd"])
    measured = measured.assign(plain_covered=covered(measured, "ci_low", "ci_high"),
                               corrected_covered=covered(measured, "ci_low_corrected", "ci_high_corrected"))
    measured = measured.assign(plain_share=measured["estimate"] / measured["truth"],
                               corrected_share=measured["estimate_corrected"] / measured["truth"])
    summary = measured.groupby(["kpi", "construct"]).agg(
        truth=("truth", "mean"), reliability=("reliability", "mean"),
        plain_share=("plain_share", "mean"), plain_coverage=("plain_covered", "mean"),
        corrected_share=("corrected_share", "mean"), corrected_coverage=("corrected_covered", "mean"))
    print(f"\nMeasured safety (survey team-wave means): share of the truth and coverage over {where}")
    print(summary.round(3).to_string())
    print(f"overall coverage: plain {measured['plain_covered'].mean():.3f}, reliability-corrected "
          f"{measured['corrected_covered'].mean():.3f} of {len(measured)} intervals")

    nulls = sweep(results, range(1000, 1000 + args.null_seeds), "null organisations", truth=NULL_TRUTH, **size)
    flagged = nulls.groupby("seed")["q_value"].apply(lambda q: int((q < 0.05).sum()))
    print(f"\nnull organisations with any BH q < 0.05: {int((flagged > 0).sum())} of {len(flagged)} "
          f"({int(flagged.sum())} of {len(nulls)} cells)")


if __name__ == "__main__":
    main()

"""Print how often the results table's 95% intervals cover the generator's true effects, per
KPI x construct, and how often a null organisation gets any BH-significant cell.

    .venv/bin/python benchmarks/model_recovery.py [--seeds 50] [--null-seeds 40] [--teams 40]
"""

import argparse
import warnings

import pandas as pd

from pipelines.synthetic.model import GroundTruth
from pipelines.synthetic.truth_frames import NULL_TRUTH, results, truths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--null-seeds", type=int, default=40)
    parser.add_argument("--teams", type=int, default=40)
    args = parser.parse_args()
    # statsmodels' fit warnings are already turned into the table's warnings column.
    warnings.simplefilter("ignore")
    table = pd.concat([results(seed, n_teams=args.teams) for seed in range(args.seeds)]).query("role == 'main'")
    truth = table["kpi"].map(truths(GroundTruth()))
    table = table.assign(truth=truth, covered=(table["ci_low"] <= truth) & (truth <= table["ci_high"]))
    summary = table.groupby(["kpi", "construct"]).agg(
        truth=("truth", "first"), mean_estimate=("estimate", "mean"), coverage=("covered", "mean"))
    print(f"95% CI coverage over {args.seeds} organisations of {args.teams} teams x 12 months (latent safety)")
    print(summary.round(3).to_string())
    print(f"overall coverage {table['covered'].mean():.3f} of {len(table)} intervals")
    nulls = [results(seed, NULL_TRUTH, n_teams=args.teams).query("role == 'main'")
             for seed in range(1000, 1000 + args.null_seeds)]
    flagged = [int((null["q_value"] < 0.05).sum()) for null in nulls]
    print(f"null organisations with any BH q < 0.05: {sum(f > 0 for f in flagged)} of {len(flagged)} "
          f"({sum(flagged)} of {sum(len(null) for null in nulls)} cells)")


if __name__ == "__main__":
    main()

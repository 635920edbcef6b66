"""``asrdistill report-cv``: RESULTS_cv.md from the fold directories of a leave-one-speaker-out run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click


@click.command("report-cv")
@click.option("--cv-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("cv"),
              help="Directory with one fold<K> directory per fold (run_cv.sh).")
@click.option("--folds", "folds_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("conf/folds.yaml"), help="The folds file the run used (its folds are reported in order).")
@click.option("--title", default="FSDD", help="Corpus name in the title.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("RESULTS_cv.md"), help="Output file.")
def report_cv(cv_dir: Path, folds_file: Path, title: str, out: Path) -> None:
    """Rows over leave-one-speaker-out folds and the paper's claims as paired tests over speakers."""
    from ..data.folds import FoldsError, read_folds
    from ..stats.cross_validation import collect_fold, render
    from ..utils.atomic import atomic_write_text
    from ..utils.config import command_line

    try:
        _, folds = read_folds(folds_file)
    except FoldsError as e:
        raise click.ClickException(str(e))
    dirs = [cv_dir / f"fold{k}" for k in range(len(folds))]
    missing = [str(d) for d in dirs if not (d / "data" / "manifests" / "prepare_config.yaml").is_file()]
    if missing:
        raise click.ClickException(f"fold directories without a prepared fold: {', '.join(missing)} "
                                   "(run run_cv.sh for them first)")
    collected = [collect_fold(d) for d in dirs]
    for d, f, spec in zip(dirs, collected, folds):
        if (f.dev_speaker, f.test_speaker) != (spec["dev"], spec["test"]):
            raise click.ClickException(f"{d} was prepared with dev {f.dev_speaker}, test {f.test_speaker}; "
                                       f"{folds_file} says dev {spec['dev']}, test {spec['test']}")
    atomic_write_text(out, "\n".join(render(collected, title, command_line(), date.today().isoformat())))
    click.echo(f"wrote {out}")

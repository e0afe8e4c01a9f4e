"""``sloth compare``: the comparison tables, --json, and bad input (files of different data,
without log-likelihood, missing or damaged) exiting 2 with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr

from sloth.cli.main import main
from sloth.posterior.fileformat import write_posterior
from tests.cli.test_untrusted_input import _bad

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def files(comparison_fits, tmp_path_factory):
    """The fixture's fits saved as ``d1.nc`` and ``d2.nc``."""
    folder = tmp_path_factory.mktemp("compare")
    out = {}
    for name, model in comparison_fits[1].items():
        out[name] = folder / f"{name}.nc"
        model.save(out[name])
    return out


def test_prints_both_tables_best_first(files, capsys):
    code = main(["compare", str(files["d1"]), str(files["d2"])])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = captured.out
    loo, lofo = out.index("PSIS-LOO (per score)"), out.index("Leave-one-family-out")
    for header in ("elpd", "dse", "weight", "k<=0.5", "0.5-0.7", "0.7-1", ">1"):
        assert header in out[loo:lofo]
    assert "refitted" in out[lofo:]
    # best PSIS-LOO first in both tables
    assert out.index("  d2 ", loo) < out.index("  d1 ", loo)
    assert out.index("  d2 ", lofo) < out.index("  d1 ", lofo)
    if "Unreliable:" in out:
        assert "--refit-families" in out


def test_json_keys_and_names(files, capsys):
    code = main(["compare", str(files["d2"]), str(files["d1"]), "--names", "two,one",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert set(result) == {"fits", "families", "unreliable", "khat_threshold", "khat_bins",
                           "best_loo", "best_lofo"}
    assert result["best_loo"] == "two" and result["khat_threshold"] == 0.7
    fits = {f["name"]: f for f in result["fits"]}
    assert set(fits) == {"two", "one"}
    assert fits["two"]["file"] == str(files["d2"])
    for key in ("elpd_loo", "se_loo", "elpd_diff_loo", "dse_loo", "p_loo", "weight_loo",
                "k_good", "k_ok", "k_bad", "k_very_bad", "elpd_lofo", "se_lofo",
                "elpd_diff_lofo", "dse_lofo", "diag_loo", "diag_lofo", "families_khat_high",
                "families_refitted", "families_unreliable",
                "n_observations", "n_families"):
        assert key in fits["one"], key
    assert fits["one"]["elpd_loo"] < fits["two"]["elpd_loo"]
    assert len(result["families"]) == 2 * fits["one"]["n_families"]
    assert {r["fit"] for r in result["families"]} == {"two", "one"}
    assert set(result["unreliable"]) == {"two", "one"}


def test_files_of_different_data_are_refused(files, comparison_fits, tmp_path, capsys):
    tree = comparison_fits[1]["d1"].idata_.copy()
    obs = tree["observed_data"].to_dataset()
    scores = obs["scores"].to_numpy().copy()
    scores[scores == scores[~(scores != scores)].max()] -= 0.05  # one score changed
    tree["observed_data"] = xr.DataTree(obs.assign(scores=(obs["scores"].dims, scores)))
    other = tmp_path / "other.nc"
    write_posterior(tree, other)
    code = main(["compare", str(files["d2"]), str(other)])
    _bad(code, capsys.readouterr(), "'d2' and 'other'", "different data", "Fix:")


def test_a_file_without_log_likelihood_is_refused(files, comparison_fits, tmp_path, capsys):
    tree = comparison_fits[1]["d1"].idata_
    light = xr.DataTree.from_dict(
        {k: v.to_dataset() for k, v in tree.children.items() if k != "log_likelihood"})
    light.attrs.update(tree.attrs)
    path = tmp_path / "light.nc"
    write_posterior(light, path)
    code = main(["compare", str(files["d2"]), str(path)])
    _bad(code, capsys.readouterr(), "'light'", "no pointwise log-likelihood", "Fix:")


def test_missing_damaged_and_misnamed_inputs(files, tmp_path, capsys):
    missing = tmp_path / "nope.nc"
    _bad(main(["compare", str(files["d1"]), str(missing)]), capsys.readouterr(),
         str(missing), "no such file")
    raw = bytearray(Path(files["d1"]).read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 4096] = bytes(4096)
    damaged = tmp_path / "damaged.nc"
    damaged.write_bytes(bytes(raw))
    _bad(main(["compare", str(damaged), str(files["d2"])]), capsys.readouterr(),
         str(damaged))
    _bad(main(["compare", str(files["d1"]), str(files["d2"]), "--names", "a"]),
         capsys.readouterr(), "--names", "2 distinct names")
    _bad(main(["compare", str(files["d1"]), "--refit-families", "no-such-family"]),
         capsys.readouterr(), "no-such-family", "not families")
    _bad(main(["compare", "--refit-families", str(files["d1"]), str(files["d2"])]),
         capsys.readouterr(), "--refit-families took the file", "Fix:")


def test_refit_families_replaces_the_psis_estimate(files, capsys):
    from tests.conftest import SINGLE_SCORE_FAMILY

    code = main(["compare", str(files["d2"]), "--refit-families", SINGLE_SCORE_FAMILY,
                 "--refit-warmup", "150", "--refit-samples", "150", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    (fit,) = result["fits"]
    assert fit["families_refitted"] == 1
    (row,) = [r for r in result["families"] if r["family"] == SINGLE_SCORE_FAMILY]
    assert row["method"] == "refit" and row["elpd"] != row["elpd_psis"]
    assert f"refitting without family '{SINGLE_SCORE_FAMILY}'" in captured.err

"""What a hybrid says of its weights per group of users
(:func:`coldbrew.models.blendreport.blend_groups`)."""

from __future__ import annotations

import numpy as np

from coldbrew.models.blendreport import blend_groups
from coldbrew.models.weights import KNOWN, NEW


def test_groups_repeat_the_shape_gains_only_where_the_search_judged_them() -> None:
    names = ("cf", "transitions")
    seen = [(KNOWN, 25, np.asarray([1.0, 0.0])), (KNOWN, 30, np.asarray([1.0, 0.0]))]
    seen.append((NEW, 2, np.asarray([0.5, 0.5])))
    validation = {
        "cell1/known/bucket20": {
            "queries": 40,
            "oof_gain": 0.02,
            "oof_gain_se": 0.01,
            "shape_gain_random": -0.03,
            "shape_se_random": 0.01,
            "shape_gain_latest": 0.07,
            "shape_se_latest": 0.02,
            "weights": {"cf": 1.0},
        },
        "cell1/new/bucket1": {"queries": 12, "oof_gain": 0.0, "oof_gain_se": 0.01},
        "cell1/known/all": {"queries": 90, "best_part": "cf", "shape_gain_random": -0.01},
    }
    known, new = blend_groups(seen, names, validation, cell=1)
    assert known["users"] == "known, 20+ liked" and known["test_users"] == 2
    assert known["val_queries"] == 40 and known["shape_gain_random"] == -0.03
    assert known["shape_se_latest"] == 0.02
    assert known["weights"] == {"cf": 1.0}
    assert known["cell_wide"] == {"queries": 90, "best_part": "cf", "shape_gain_random": -0.01}
    assert "cell_wide" not in new
    assert new["weights"] == {"cf": 0.5, "transitions": 0.5}
    assert not any(k.endswith(("_random", "_latest")) for k in new)

"""bench.targets reads the benchmark results and judges each target from them (synthetic results here)."""

from bench.targets import frontier_targets, guidance_target, prior_targets


def r(label, nfe, fid, sampler="ddim", p=0.8, rec=0.8, gap=3.0):
    return {"label": label, "nfe": nfe, "sampler": sampler,
            "scores": {"sprite_fid": fid, "precision": p, "recall": rec, "class_gap_points": gap}}


def test_prior_targets_use_ddpm_500_standard_as_the_reference():
    res = {"floor": {"sprite_fid": 0.04}, "rows": [
        r("DDPM, standard", 500, 0.07, "ddpm"), r("DDPM, moments", 500, 0.05, "ddpm"),
        r("DDIM eta 0, standard", 50, 0.25), r("DDIM eta 0, moments", 50, 0.06, p=0.69, gap=6.0)]}
    met = [x["met"] for x in prior_targets(res)]
    assert met == ["yes", "yes", "yes", "no", "no", "no"]  # 0.05 <= 1.5 * 0.04; 0.06 <= 0.07; 0.25 > 3 * 0.07
    res["rows"][1]["scores"]["sprite_fid"] = 0.065  # the reference stays DDPM-500 from N(0, I)
    assert [x["met"] for x in prior_targets(res)] == ["yes", "no", "yes", "no", "no", "no"]


def test_frontier_targets_compare_ours_with_stock_and_ddpm():
    res = {"rows": [r("DDPM, standard", 500, 0.10, "ddpm"), r("DDPM, moments", 500, 0.08, "ddpm"),
                    r("DPM++(2M), moments", 5, 0.20, "dpmpp_2m"), r("DPM++(2M), moments", 10, 0.09, "dpmpp_2m"),
                    r("stock DPMSolverMultistep 2M, moments", 5, 0.19, "stock_dpmpp_2m"),
                    r("stock DPMSolverMultistep 2M, moments", 10, 0.12, "stock_dpmpp_2m")]}
    out = frontier_targets(res, {"speedup": 45.0, "num_images": 50, "repeats": 3})
    assert out[0]["met"] == "yes" and "1.12x" in out[0]["measured"]  # 0.09 against the better DDPM, 0.08
    assert out[1]["met"] == "n/a" and "0.200" in out[1]["measured"]  # what 5 NFE reach
    assert out[2]["met"] == "no" and "at 5: 0.2000 > 0.1900" in out[2]["measured"]
    assert out[3]["met"] == "no" and out[4]["met"] == "yes"


def test_guidance_target_takes_the_best_scale_up_to_3():
    g = {"pipeline": {"path": "p"}, "rows": [{"scale": 0.0, "match": {"match": 0.9}},
                                             {"scale": 2.0, "match": {"match": 0.82}},
                                             {"scale": 4.0, "match": {"match": 0.95}}]}
    assert guidance_target(g)["met"] == "yes" and "0.82 at w = 2" in guidance_target(g)["measured"]


def test_guidance_target_names_the_smallest_scale_that_meets_it():
    g = {"pipeline": {"path": "p"}, "rows": [{"scale": 1.0, "match": {"match": 0.85}},
                                             {"scale": 2.0, "match": {"match": 0.99}}]}
    assert guidance_target(g)["met"] == "yes" and "0.85 at w = 1" in guidance_target(g)["measured"]

"""The pieces of `make bench` that are quick to test: machine info, the Markdown and the files.

The full benchmark takes minutes; it runs with `make bench`, not here.
"""

import json
from pathlib import Path

import pytest

from benchmarks import run_all
from course_utils.env import machine_info

ROOT = Path(__file__).resolve().parents[1]


def fake_results(cuda=None):
    accuracy = {"dense": 89.7}
    for method in ("layer-wise", "global"):
        for s in run_all.SPARSITIES:
            accuracy[f"{method} {s}"] = {
                "method": method,
                "sparsity": s,
                "one_shot": 80.0,
                "fine_tuned": 88.0,
            }
    structured = {
        "speedup": 1.9,
        "mac_ratio": 2.1,
        "dense_ms": 1.0,
        "pruned_ms": 0.5,
        "parameters": [235146, 109386],
        "dense_acc": 89.7,
        "acc_before": 73.5,
        "acc_after": 89.3,
        "fine_tune": "5 epochs",
    }
    transformer = {
        "dense": {"ppl": 4.87},
        "structured": {
            "speedup": 1.85,
            "mac_ratio": 1.98,
            "ppl": 7.46,
            "parameters": [818241, 423233],
        },
    }
    for method, ppl in (("magnitude", 5.40), ("wanda", 5.43), ("sparsegpt", 5.19)):
        transformer[f"{method} 50%"] = {"ppl": ppl, "seconds": 0.5}
        transformer[f"{method} 2:4"] = {"ppl": ppl + 1, "seconds": 0.5}
    return {
        "machine": machine_info(),
        "seconds": 123.4,
        "data_pipeline": {
            "epoch_seconds": {"per-sample": 6.3, "course": 0.7},
            "speedup": 9.0,
            "repeats": 3,
        },
        "structured": {
            "mlp": structured,
            "cnn": dict(structured, speedup=3.1, mac_ratio=3.9),
            "resnet": dict(structured, speedup=2.3, mac_ratio=3.96),
        },
        "storage": {
            str(s): {
                "dense_bytes": 943317,
                "compact_bytes": 54529,
                "ratio": 17.3,
                "csr_gzip_bytes": 60282,
                "csr_ratio": 15.6,
            }
            for s in run_all.STORAGE_SPARSITIES
        },
        "accuracy": accuracy,
        "cuda": cuda,
        "transformer": transformer,
        "deployment": {
            "mac_ratio": 3.88,
            "eager_speedup": 2.69,
            "ort_speedup": 3.35,
            "ort_speedup_alone": 3.5,
            "ort_over_eager_dense": 2.13,
            "ms": {},
            "half_fp32_acc": 89.30,
            "half_int8_acc": 88.91,
            "bytes": {"dense fp32": 231337, "half fp32": 98981, "half int8": 36430},
            "budget": {
                "dense_bytes": 943253,
                "packed_bytes": 23176,
                "ratio": 40.7,
                "dense_acc": 89.78,
                "pruned_acc": 87.77,
                "int8_acc": 87.76,
            },
        },
    }


def test_markdown_report_cpu_only():
    text = run_all.markdown_report(fake_results())
    assert "**9.0x** faster" in text and "**1.90x**" in text and "**17.3x** smaller" in text
    assert (
        "SmallResNet, 50% of channels removed by Torch-Pruning: CPU throughput at batch 256"
        " | **2.30x**"
    ) in text
    assert "| 95% | 80.00% | 88.00% | 80.00% | 88.00% |" in text
    assert "sparsegpt 5.19 / 6.19 (0.5 s)" in text and "**1.85x** (MAC ratio: 1.98x)" in text
    assert "CPU only" in text and "make bench" in text
    assert "ONNX Runtime **3.35x** over its dense model (86% of the MAC ratio 3.88x" in text
    assert "target: at least 80% of the MAC ratio: met" in text
    assert "88.91% vs 89.30% fp32 (-0.39 points); file **2.7x** smaller" in text
    assert "at least 3x smaller: not met here" in text
    assert "**40.7x** smaller (23 KB vs 943 KB)" in text


def test_markdown_report_with_cuda():
    cuda = {
        "device": "NVIDIA A100",
        "mlp_speedup_batch_4096": 1.5,
        "cnn_speedup_batch_4096": 2.5,
        "semi_structured": "NVIDIA A100, compute capability 8.0",
        "2:4_acc_fine_tuned": 89.1,
        "2:4_net_speedup_batch_10000": 0.9,
        "2:4_layer_4096_speedup": 1.3,
    }
    text = run_all.markdown_report(fake_results(cuda))
    assert "NVIDIA A100" in text and "1.30x" in text and "CPU only" not in text
    cuda = {
        "device": "Tesla T4",
        "mlp_speedup_batch_4096": 1.5,
        "cnn_speedup_batch_4096": 2.5,
        "semi_structured": "Tesla T4 has compute capability 7.5",
    }
    assert "2:4 not measured: Tesla T4" in run_all.markdown_report(fake_results(cuda))


def test_write_outputs(tmp_path):
    results = fake_results()
    run_all.write_outputs(results, tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["results.json", "results.md"]
    assert not (tmp_path / "RESULTS.md").exists(), "a learner's run writes bench_results/ only"
    committed = tmp_path / "RESULTS.md"
    json_path, md_path = run_all.write_outputs(results, tmp_path / "bench_results", committed)
    assert json.loads(json_path.read_text())["data_pipeline"]["speedup"] == 9.0
    assert md_path.read_text() == committed.read_text() == run_all.markdown_report(results)


def test_committed_table_exists():
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert "make bench" in text and "Measured with" in text


def test_update_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# Title\n\n## Results\n\n{run_all.README_START}\nold\n{run_all.README_END}\n\n## Tests\n"
    )
    run_all.update_readme("| new | table |\n", readme)
    assert readme.read_text() == (
        f"# Title\n\n## Results\n\n{run_all.README_START}\n| new | table "
        "|\n"
        f"{run_all.README_END}\n\n## Tests\n"
    )
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        run_all.update_readme("x", readme)


def test_readme_shows_the_committed_results_table():
    readme = (ROOT / "README.md").read_text()
    committed = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert f"<!-- results:start -->\n{committed}<!-- results:end -->" in readme, (
        "README's Results section differs from benchmarks/RESULTS.md: run `make bench`"
    )

"""The speed benchmark of article-qa (issue "Speed"): run it with `python -m bench`.

The speed targets (cold `ask` ≤ 1 s and ≥ 5× the naive baseline, `--help` ≤ 0.3 s, warm chat
latency p50 ≤ 80 ms / p95 ≤ 200 ms, `batch` ≥ 25 questions/s, `index` of 1 MB ≤ 60 s, `ask` peak
memory ≤ 600 MB) live here and not in timed tests: wall-clock assertions in the test suite fail at
random on a shared or busy machine and say nothing about why. This is a report: it measures every
row several times in one run, prints medians (and p50/p95 where a target is about tail latency)
next to the target, and exits 0 whatever it finds.

Because the machine is shared and noisy, absolute numbers move from run to run; the ratio to the
naive baseline (a plain sentence-transformers + FAISS + PyTorch script doing the same work) is
measured in the same run, interleaved run by run with the tool, so both see the same load.
"""

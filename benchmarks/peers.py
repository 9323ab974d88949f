#!/usr/bin/env python3
"""ocrserve versus its peers, same machine, same load, alternating runs, concurrency 1, 4, 16.

1. TorchServe: the real TorchServe 0.12 (``benchmarks/peers/setup_torchserve.sh`` makes its
   venv) serving the same DBNet-r18 ``.mar`` through ``ocrserve.torchserve_handler``, versus
   ocrserve serving it; both up at once, idle while the other is measured. ``--setup matched``:
   one worker each with ocrserve's thread count, batch 1 (see `harness.TorchServe`);
   ``--setup defaults``: each at its own defaults. ``--rounds`` (5) rounds; in each, every
   concurrency runs on both servers back to back, the order alternating from round to round.
   The table gives the mean and the min-max over rounds of req/s, of the ratio to TorchServe
   and of p99, and the load average of every run.
2. RapidOCR: rapidocr 3.10's own pipeline behind `benchmarks/peers/rapidocr_server.py`
   (uvicorn, one engine answering one request at a time with ocrserve's thread count: like
   ocrserve's default of one worker using every core) versus ocrserve's ``ocr`` model, both
   servers up at once. Accuracy: every image of each ``--data`` textset through both servers
   (concurrency 4), scored by ``../shared/tools/evaluate.py`` (line-level end to end), with
   the detection network input shapes of both checked per image size. Speed: the first
   ``--images`` (40) images of the first textset at concurrency 1, 4 and 16, ``--rounds``
   rounds alternating which server goes first. ``--rapidocr-param KEY=VALUE`` sets RapidOCR
   parameters (e.g. ``Det.limit_side_len=960``).

Usage (from the repository root):
  python benchmarks/peers.py --only torchserve [--setup matched|defaults] [--rounds 5]
                             [--requests 6 16 32] [--server-args "..."]
  python benchmarks/peers.py --only rapidocr [--rounds 3] [--images 40]
                             [--rapidocr-param Det.limit_side_len=736 ...]
                             [--rapidocr-no-spinning] [--no-accuracy] [--tag _x]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
from harness import (
    FIXTURES,
    REPO,
    RESULTS,
    SHARED,
    Ocrserve,
    RapidOCRServer,
    Server,
    TorchServe,
    extracted,
    fixture_archive,
    load,
    log,
    machine,
    md_table,
    summary,
    torchserve_bin,
    uptime,
    write_result,
)

#: Concurrency levels of every comparison.
CONC = (1, 4, 16)
SETUP = REPO / "benchmarks" / "peers" / "setup_torchserve.sh"


def vs_torchserve(args: argparse.Namespace) -> dict[str, Any]:
    launcher = torchserve_bin()
    if launcher is None:
        out = subprocess.run([str(SETUP)], check=True, capture_output=True, text=True).stdout
        launcher = Path(out.strip().splitlines()[-1])
    archive = fixture_archive("dbnet_r18")
    image = args.det_image
    log("starting ocrserve and TorchServe with dbnet_r18.mar")
    ours = Ocrserve([str(archive)], *shlex.split(args.server_args))
    threads = int(ours.describe("dbnet_r18")["cpuThreads"])
    try:
        extra_env = dict(item.split("=", 1) for item in args.torchserve_env)
        theirs = TorchServe(
            launcher, archive, threads if args.setup == "matched" else None, env=extra_env
        )
    except BaseException:
        ours.stop()
        raise
    servers: list[Server] = [ours, theirs]
    requests = dict(zip(CONC, args.requests))
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        s.name: {c: [] for c in CONC} for s in servers
    }
    loads: list[str] = []
    try:
        body = image.read_bytes()
        answers = [
            httpx.put(s.predictions("dbnet_r18"), content=body, timeout=120).json() for s in servers
        ]
        same = answers[0] == answers[1]
        log(f"same answer from both: {same}; ready in {ours.ready_s:.1f} / {theirs.ready_s:.1f} s")
        for s in servers:
            load(s.predictions("dbnet_r18"), [image], 2, 4, 60)  # warm-up
        for r in range(args.rounds):
            loads.append(uptime())
            log(loads[-1])
            for c in CONC:
                for s in servers if r % 2 == 0 else servers[::-1]:
                    res = load(s.predictions("dbnet_r18"), [image], c, requests[c], 600)
                    runs[s.name][c].append(res)
                    log(
                        f"round {r + 1} {s.name} c={c}: {res['rps']:.2f} req/s p50 "
                        f"{res['p50']:.0f} p99 {res['p99']:.0f} ms, {res['errors']} errors "
                        f"(load {res['loadavg']})"
                    )
        loads.append(uptime())
        rss = {s.name: sum(s.rss().values()) for s in servers}
        workers = {s.name: len(s.workers("dbnet_r18")) for s in servers}
    finally:
        theirs.stop()
        ours.stop()
    rows, report = [], {"setup": args.setup, "threads": threads, "workers": workers}
    report["torchserve_env"] = args.torchserve_env
    report.update(same_answer=same, rss_bytes=rss, uptime=loads, requests=requests, runs={})
    for c in CONC:
        for name in ("torchserve", "ocrserve"):
            res_c = runs[name][c]
            lat = [v for res in res_c for v in res["latencies_ms"]]
            s = summary(lat)
            rps = [res["rps"] for res in res_c]
            p99s = [res["p99"] for res in res_c]
            ratio = [a / b["rps"] for a, b in zip(rps, runs["torchserve"][c])]
            p99_ratio = [a / b["p99"] for a, b in zip(p99s, runs["torchserve"][c])]
            report["runs"][f"{name}/c{c}"] = [
                {k: v for k, v in res.items() if k != "latencies_ms"} for res in res_c
            ]
            report[f"{name}/c{c}"] = {"rps": rps, "p99": p99s, "pooled": s}
            rows.append(
                [c, name, sum(res["errors"] for res in res_c), spread(rps), spread(ratio),
                 f"{s['p50']:.0f}", f"{s['p99']:.0f} ({min(p99s):.0f}-{max(p99s):.0f})",
                 spread(p99_ratio), "/".join(str(res["loadavg"]) for res in res_c)]
            )  # fmt: skip
    m = machine()
    print(
        f"\n### ocrserve vs TorchServe 0.12: DBNet-r18 (fixture), {image.name}, {args.setup} "
        f"{' '.join(args.torchserve_env)}: "
        f"ocrserve {workers['ocrserve']} worker(s) x {threads} thread(s), TorchServe "
        f"{workers['torchserve']} worker(s)\n"
    )
    print(
        f"{m['cpu']}, {m['cores']} cores; {args.rounds} alternating rounds; requests per run "
        f"{requests}\n"
    )
    print(
        md_table(
            [
                "concurrency",
                "server",
                "errors",
                "req/s mean (min-max)",
                "vs TorchServe mean (min-max)",
                "p50 ms",
                "p99 ms pooled (per-round min-max)",
                "p99 / TorchServe mean (min-max)",
                "load avg per round",
            ],
            rows,
        )  # fmt: skip
    )
    print("\n" + "\n".join(loads))
    print(
        f"same JSON answer from both: {same}; RSS (server + workers) at the end: "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items())
    )
    return report


def check_shapes(datasets: list[Path], recorded: Path) -> dict[str, Any]:
    """Detection network input shapes, ocrserve vs RapidOCR, per textset image size.

    RapidOCR's come from its server (``--record-shapes``: every request of the accuracy pass);
    ocrserve's from its own ``PPOCRDetector.detect`` on one image of each size, in process, with
    a session that records what it is given (the resize depends on the image size alone).
    """
    from ocrserve.archives.loader import load_predictor
    from ocrserve.imaging import decode

    theirs: dict[str, set[str]] = {}
    for line in recorded.read_text().splitlines():
        rec = json.loads(line)
        theirs.setdefault("x".join(map(str, rec["image"])), set()).add(
            "x".join(map(str, rec["det_input"]))
        )
    predictor: Any = load_predictor(extracted("ocr"), 2)
    detector = predictor.detector
    session, seen = detector.session, []

    class Recording:
        def run(self, names: Any, feeds: dict[str, Any]) -> Any:
            seen.append(next(iter(feeds.values())).shape)
            return session.run(names, feeds)

    detector.session = Recording()
    ours: dict[str, str] = {}
    for root in datasets:
        for im in json.loads((root / "det" / "index.json").read_text())["images"]:
            body = (root / "det" / im["image"]).read_bytes()
            image = decode(body, 40_000_000, exif_orientation=True)
            size = f"{image.shape[1]}x{image.shape[0]}"
            if size not in ours:
                detector.detect(image)
                ours[size] = "x".join(map(str, seen[-1]))
    rows = {
        size: {"ocrserve": ours[size], "rapidocr": sorted(theirs.get(size, []))} for size in ours
    }
    same = all([r["ocrserve"]] == r["rapidocr"] for r in rows.values())
    log("detection input shapes (image WxH: ocrserve / RapidOCR): " + "; ".join(
        f"{k}: {v['ocrserve']} / {','.join(v['rapidocr'])}" for k, v in rows.items()
    ) + f"; same: {same}")  # fmt: skip
    return {"by_image_size": rows, "same": same}


def spread(values: list[float], fmt: str = ".2f") -> str:
    """``mean (min-max)`` of per-round values."""
    return f"{sum(values) / len(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def vs_rapidocr(args: argparse.Namespace) -> dict[str, Any]:
    """Both as servers, both up at once, rounds alternating which side goes first."""
    import textset_accuracy as ta

    out = RESULTS / f"peers_rapidocr{args.tag}"
    out.mkdir(parents=True, exist_ok=True)
    sets = [ta.Textset(d.resolve(), None) for d in args.data]
    bench_files = [s.file("e2e", k) for s in sets[:1] for k in s.keys("e2e")][: args.images]
    log("starting ocrserve with the ocr model")
    ours = Ocrserve(["ocr"], *shlex.split(args.ocr_server_args))
    try:
        threads = int(ours.describe("ocr")["cpuThreads"])
        workers = len(ours.describe("ocr")["workers"])
        shapes_file = out / "rapidocr_det_shapes.jsonl"
        log(f"starting RapidOCR's server, {threads} threads, params {args.rapidocr_param}")
        extra = ["--no-spinning"] if args.rapidocr_no_spinning else []
        theirs = RapidOCRServer(threads, args.rapidocr_param, shapes_file, extra=extra)
    except BaseException:
        ours.stop()
        raise
    urls = {"ocrserve": ours.predictions("ocr"), "rapidocr": theirs.predictions("rapidocr")}
    sides = list(urls)
    report: dict[str, Any] = {"threads": threads, "ocrserve_workers": workers}
    report["rapidocr_params"] = args.rapidocr_param
    report["rapidocr_no_spinning"] = args.rapidocr_no_spinning
    report["bench_images"] = [str(f) for f in bench_files]
    accuracy: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {s: {c: [] for c in CONC} for s in sides}
    loads: list[str] = []
    try:
        for side in sides:
            load(urls[side], bench_files[:2], 1, 4, 300)  # warm-up
        if not args.no_accuracy:
            for data in sets:
                keys = data.keys("e2e")
                files = [data.file("e2e", k) for k in keys]
                for side in sides:
                    dump = out / f"{side}_{data.root.name}_answers.json"
                    res = load(urls[side], files, 4, len(files), 1800, responses=dump)
                    by_file = json.loads(dump.read_text())
                    pred = out / f"{side}_{data.root.name}_e2e.json"
                    answers = {k: by_file.get(str(f)) for k, f in zip(keys, files)}
                    pred.write_text(json.dumps(answers))
                    score = ta.evaluate(args.evaluate, "e2e", data.root, pred)
                    accuracy[f"{side}/{data.root.name}"] = {
                        "errors": res["errors"], "images_per_s": res["rps"], **score
                    }  # fmt: skip
                    log(
                        f"{side} {data.root.name}: e2e H-mean {score['e2e_hmean']:.4f}, det "
                        f"H-mean {score['det_hmean']:.4f}, {res['errors']} errors "
                        f"(load {res['loadavg']})"
                    )
            report["shapes"] = check_shapes([d.root for d in sets], shapes_file)
        for r in range(args.rounds):
            loads.append(uptime())
            log(loads[-1])
            for c in CONC:
                for side in sides if r % 2 == 0 else sides[::-1]:
                    res = load(urls[side], bench_files, c, len(bench_files), 1800)
                    runs[side][c].append(res)
                    log(
                        f"round {r + 1} {side} c={c}: {res['rps']:.2f} images/s p50 "
                        f"{res['p50']:.0f} p99 {res['p99']:.0f} ms, {res['errors']} errors "
                        f"(load {res['loadavg']})"
                    )
        loads.append(uptime())
        rss = {"ocrserve": sum(ours.rss().values()), "rapidocr": sum(theirs.rss().values())}
    finally:
        theirs.stop()
        ours.stop()
    report.update(accuracy=accuracy, uptime=loads, rss_bytes=rss, runs={})
    rows = []
    for c in CONC:
        for side in sides:
            res_c = runs[side][c]
            lat = [v for res in res_c for v in res["latencies_ms"]]
            s = summary(lat)
            ips = [res["rps"] for res in res_c]
            p99s = [res["p99"] for res in res_c]
            report["runs"][f"{side}/c{c}"] = [
                {k: v for k, v in res.items() if k != "latencies_ms"} for res in res_c
            ]
            base = [res["rps"] for res in runs["rapidocr"][c]]
            ratio = [a / b for a, b in zip(ips, base)]
            rows.append(
                [c, side, sum(res["errors"] for res in res_c), spread(ips), spread(ratio),
                 f"{s['p50']:.0f}", f"{s['p99']:.0f} ({min(p99s):.0f}-{max(p99s):.0f})",
                 "/".join(str(res["loadavg"]) for res in res_c)]
            )  # fmt: skip
    m = machine()
    print(
        f"\n### ocrserve `ocr` vs RapidOCR's pipeline, both served: {len(bench_files)} "
        f"images of {args.data[0].name}, {args.rounds} alternating rounds\n"
    )
    print(
        f"{m['cpu']}, {m['cores']} cores; ocrserve {workers} worker x {threads} threads "
        f"{args.ocr_server_args}; RapidOCR 1 engine x {threads} threads {args.rapidocr_param}"
        f"{' no spinning' if args.rapidocr_no_spinning else ''}\n"
    )
    if accuracy:
        print(
            md_table(
                ["side / set", "e2e H-mean", "det H-mean", "text acc on matched", "images/s (c=4)"],
                [
                    [
                        k,
                        f"{v['e2e_hmean']:.4f}",
                        f"{v['det_hmean']:.4f}",
                        f"{v['e2e_word_acc']:.4f}",
                        f"{v['images_per_s']:.2f}",
                    ]
                    for k, v in accuracy.items()
                ],  # fmt: skip
            )
        )
        print()
    print(
        md_table(
            [
                "concurrency",
                "server",
                "errors",
                "images/s mean (min-max)",
                "vs RapidOCR mean (min-max)",
                "p50 ms",
                "p99 ms pooled (per-round min-max)",
                "load avg per round",
            ],
            rows,
        )  # fmt: skip
    )
    print("\n" + "\n".join(loads))
    print(
        "RSS (server + workers) at the end: "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items())
    )
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["torchserve", "rapidocr"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--requests",
        type=int,
        nargs=3,
        default=[6, 16, 32],
        metavar=("C1", "C4", "C16"),
        help="TorchServe: requests per run at concurrency 1, 4 and 16",
    )
    ap.add_argument(
        "--torchserve-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="TorchServe: a variable for it and its workers, e.g. OMP_WAIT_POLICY=PASSIVE "
        "(ocrserve's workers set that one)",
    )
    ap.add_argument("--det-image", type=Path, default=FIXTURES / "images" / "det_640x640.png")
    ap.add_argument("--server-args", default="", help="extra ocrserve args (DBNet part)")
    ap.add_argument(
        "--setup",
        choices=["matched", "defaults"],
        default="matched",
        help="TorchServe with ocrserve's worker and thread counts, or at its own defaults",
    )
    ap.add_argument("--ocr-server-args", default="", help="extra ocrserve args (ocr part)")
    ap.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=[SHARED / "data" / "textset-public", SHARED / "data" / "textset-val"],
        help="RapidOCR: textsets scored in full; the first one's first --images time the load",
    )
    ap.add_argument("--images", type=int, default=40, help="RapidOCR: images per timed run")
    ap.add_argument("--no-accuracy", action="store_true", help="RapidOCR: timing only")
    ap.add_argument(
        "--rapidocr-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="RapidOCR parameter, e.g. Det.limit_side_len=960 (repeatable)",
    )
    ap.add_argument(
        "--rapidocr-no-spinning",
        action="store_true",
        help="RapidOCR: sleeping ONNX Runtime threads, as ocrserve's (not a RapidOCR setting)",
    )
    ap.add_argument("--evaluate", type=Path, default=SHARED / "tools" / "evaluate.py")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.only in (None, "torchserve"):
        report["torchserve"] = vs_torchserve(args)
    if args.only in (None, "rapidocr"):
        report["rapidocr"] = vs_rapidocr(args)
    print(f"\nwrote {write_result(f'peers{args.tag}', report)}")


if __name__ == "__main__":
    main()

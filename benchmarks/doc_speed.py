"""Where `ocr`'s CPU goes on document pages, and what the speed options cost and save.

A by-hand benchmark (issue 35, point 3), not a test. CPU time (user + sys of this process, all
threads: ``resource.getrusage``) is the cost measure, because it does not move when other
processes share the cores; wall time and core use (CPU / wall) are printed beside it, and are
only meaningful on a quiet machine.

Pages: ``--docset DIR`` (PNG pages with a ``.txt`` ground truth of the same stem, e.g. the tune
half written by ``benchmarks/docset.py``), else ``--pdf FILE ...`` rendered at 150 dpi with
pypdfium2, ground truth from the PDF's text layer (pages with under ``--min-chars`` characters
of text are skipped; ``--per-doc`` pages are taken evenly spread over each document).

Subcommands (each prints a table; every variant runs in alternating rounds, median and range):

- ``profile``: CPU seconds per stage per page (det resize+normalise, det network, DB
  post-processing, crops, classifier, recogniser pre-processing, network, CTC) and the
  recogniser's batches (count, size, width, padding waste).
- ``variants``: end-to-end variants (``--variant NAME=JSON``, JSON overriding the bundled
  config, plus ``threads``, ``rec_model``, ``spin``, ``rec_max_pixels``): CPU / page, wall /
  page, core use, mean CER against the ground truth and the text's CER against the baseline.
- ``stream``: a stream of pages through W worker processes of T threads each (the server's
  layout: ``--layout 1x2 --layout 2x1``): pages / s, CPU / page, peak RSS per worker.

Example: ``python benchmarks/doc_speed.py --pdf /usr/share/doc/*/*.pdf profile``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import docscore  # noqa: E402

from ocrserve.ppocr import DEFAULT_CONFIG, TASK_FILES, build_ppocr  # noqa: E402
from ocrserve.ppocr.det import db_boxes, normalize, resize_for_det  # noqa: E402
from ocrserve.ppocr.e2e import PPOCREndToEnd, crop_quad, reading_order  # noqa: E402
from ocrserve.ppocr.rec import PPOCRRecognizer, ctc_read, resize_norm_crop  # noqa: E402


def cpu_now() -> float:
    """User + system CPU seconds of this process (every thread)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Page:
    name: str
    image: np.ndarray
    truth: str


def render_pdfs(pdfs: Sequence[str], per_doc: int, min_chars: int, dpi: int) -> list[Page]:
    """``per_doc`` text pages of each PDF, evenly spread, at ``dpi``, with the text layer."""
    import pypdfium2 as pdfium

    pages: list[Page] = []
    for path in pdfs:
        doc = pdfium.PdfDocument(path)
        texts = []
        for i in range(len(doc)):
            tp = doc[i].get_textpage()
            texts.append(tp.get_text_range())
        usable = [i for i, t in enumerate(texts) if len(t.strip()) >= min_chars]
        if not usable:
            continue
        step = max(1, len(usable) // per_doc)
        for i in usable[step // 2 :: step][:per_doc]:
            bitmap = doc[i].render(scale=dpi / 72, grayscale=False)
            rgb = bitmap.to_numpy()[:, :, :3]  # pypdfium2 gives BGR(A) by default
            img = np.ascontiguousarray(rgb)
            pages.append(Page(f"{Path(path).stem}-p{i + 1}", img, texts[i]))
    return pages


def load_pages(args: argparse.Namespace) -> list[Page]:
    if args.docset:
        root = Path(args.docset)
        manifest = root / "manifest.json"
        if manifest.exists():  # benchmarks/docset.py's layout: pages of one half
            entries = json.loads(manifest.read_text())["pages"]
            chosen = [(root / e["png"], root / e["txt"]) for e in entries if e["half"] == args.half]
        else:
            chosen = [(png, png.with_suffix(".txt")) for png in sorted(root.glob("*.png"))]
        pages = [
            Page(png.stem, cv2.imread(str(png), cv2.IMREAD_COLOR), txt.read_text("utf-8"))
            for png, txt in chosen
            if txt.exists()
        ]
    else:
        pages = render_pdfs(args.pdf, args.per_doc, args.min_chars, args.dpi)
    if args.limit and len(pages) > args.limit:  # evenly spread over the set
        picks = np.linspace(0, len(pages) - 1, args.limit).round().astype(int)
        pages = [pages[i] for i in dict.fromkeys(picks.tolist())]
    return pages


# ---------------------------------------------------------------------------------------------
# Building a predictor for a variant


def make_session(path: Path, threads: int, spin: bool, opt_level: str, memory: str) -> Any:
    """A session like `ocrserve.onnx_session.create_session`, with spinning and the graph
    optimisation level as parameters."""
    from ocrserve import onnx_session

    session = onnx_session.create_session(path, threads, memory)
    if not spin and opt_level == "all":
        return session
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.enable_mem_pattern = False
    providers: list[Any] = [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    raw = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    return onnx_session.Session(raw, "shrink")


def build_variant(spec: dict[str, Any]) -> PPOCREndToEnd:
    config = json.loads(json.dumps(DEFAULT_CONFIG))
    for key in ("det", "rec", "cls", "e2e"):
        config[key].update(spec.get(key, {}))
    threads = int(spec.get("threads", 2))
    files: dict[str, Path | None] = dict.fromkeys(TASK_FILES["e2e"])
    if spec.get("rec_model"):
        files["rec"] = Path(spec["rec_model"])
    predictor = build_ppocr("e2e", files, config, threads)
    assert isinstance(predictor, PPOCREndToEnd)
    if spec.get("no_cls"):
        predictor.classifier = None
    spin, level = bool(spec.get("spin", False)), str(spec.get("opt_level", "all"))
    if spin or level != "all":
        from ocrserve.ppocr.weights import weights_path

        predictor.detector.session = make_session(weights_path("det"), threads, spin, level, "")
        rec_path = files["rec"] or weights_path("rec")
        predictor.recognizer.session = make_session(rec_path, threads, spin, level, "")
    if spec.get("engine") == "ov":
        from ocrserve.ppocr.weights import weights_path

        precision = str(spec.get("ov_precision", ""))
        cache = spec.get("ov_cache")
        det_path = weights_path("det")
        predictor.detector.session = OpenVINONet(det_path, threads, precision, cache)
        rec_path = files["rec"] or weights_path("rec")
        predictor.recognizer.session = OpenVINONet(rec_path, threads, precision, cache)
    if spec.get("rec_max_pixels") or spec.get("rec_waste"):
        packed_read(
            predictor.recognizer,
            int(spec.get("rec_max_pixels", 10**9)),
            float(spec.get("rec_waste", 1.0)),
        )
    return predictor


def packed_read(rec: PPOCRRecognizer, max_pixels: int, waste: float) -> None:
    """Replace ``rec.read`` with width-packed batching: crops sorted by width, a batch grows while
    its padded width (batch x widest) stays under ``max_pixels`` / height and its padding under
    ``waste`` of the batch (a proposal for `PPOCRRecognizer.read`, measured here first)."""

    def read(crops: Sequence[np.ndarray]) -> list[Any]:
        ratios = [min(rec.max_ratio, c.shape[1] / max(c.shape[0], 1)) for c in crops]
        widths = [max(rec.min_width, int(rec.height * r)) for r in ratios]
        order = list(np.argsort(ratios, kind="stable"))
        results: list[Any] = [("", 0.0, [])] * len(crops)
        for chunk in pack(order, widths, rec.batch_num, max_pixels // rec.height, waste):
            width = max(widths[i] for i in chunk)
            batch = np.stack([resize_norm_crop(crops[i], rec.height, width) for i in chunk])
            probs = rec.session.run(None, {rec._input: batch})[0]
            for i, res in zip(chunk, ctc_read(probs, rec.charset)):
                results[i] = res
        return results

    rec.read = read


def pack(
    order: Sequence[int], widths: Sequence[int], batch_num: int, max_width_sum: int, waste: float
) -> list[list[int]]:
    """Consecutive runs of ``order`` (ascending width) as batches of at most ``batch_num``."""
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        trial = [*cur, i]
        padded = len(trial) * widths[i]
        used = sum(widths[j] for j in trial)
        if cur and (
            len(trial) > batch_num or padded > max_width_sum or (padded - used) > waste * padded
        ):
            batches.append(cur)
            trial = [i]
        cur = trial
    if cur:
        batches.append(cur)
    return batches


def page_text(answer: dict[str, Any]) -> str:
    return "\n".join(line["text"] for line in answer["result"])


# ---------------------------------------------------------------------------------------------
# profile


@dataclass
class Stages:
    cpu: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    batches: list[tuple[int, int, int]] = field(default_factory=list)  # (size, width, used)

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        c0, w0 = cpu_now(), time.perf_counter()
        out = fn()
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu_now() - c0
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w0
        return out


def rec_batch(
    rec: PPOCRRecognizer, crops: Sequence[np.ndarray], chunk: Sequence[int], width: int
) -> np.ndarray:
    return np.stack([resize_norm_crop(crops[i], rec.height, width) for i in chunk])


def profile_page(pred: PPOCREndToEnd, img: np.ndarray, st: Stages) -> str:
    det, cls, rec = pred.detector, pred.classifier, pred.recognizer
    s = det.settings
    h, w = img.shape[:2]
    x = st.timed("det pre", lambda: normalize(resize_for_det(img, s), s.mean, s.std))
    prob = st.timed("det net", lambda: det.session.run(None, {det._input: x})[0][0, 0])
    boxes = st.timed("det post", lambda: db_boxes(prob, h, w, s))
    order = reading_order([b for b, _ in boxes])
    boxes = [boxes[i] for i in order]
    crops = st.timed("crops", lambda: [crop_quad(img, q) for q, _ in boxes])
    if cls is not None and crops:
        crops = st.timed("cls", lambda: cls.upright(crops))
    ratios = [min(rec.max_ratio, c.shape[1] / max(c.shape[0], 1)) for c in crops]
    idx = np.argsort(ratios, kind="stable")
    texts: list[str] = [""] * len(crops)
    for start in range(0, len(crops), rec.batch_num):
        chunk = [int(i) for i in idx[start : start + rec.batch_num]]
        width = int(rec.height * max(rec.min_width / rec.height, *(ratios[i] for i in chunk)))
        batch = st.timed("rec pre", partial(rec_batch, rec, crops, chunk, width))
        probs = st.timed("rec net", partial(rec.session.run, None, {rec._input: batch}))[0]
        reads = st.timed("rec ctc", partial(ctc_read, probs, rec.charset))
        used = sum(min(width, int(np.ceil(rec.height * ratios[i]))) for i in chunk)
        st.batches.append((len(chunk), width, used))
        for i, r in zip(chunk, reads):
            texts[i] = r[0] if r[1] >= pred.drop_score else ""
    return "\n".join(t for t in texts if t)


def cmd_profile(args: argparse.Namespace, pages: list[Page]) -> None:
    pred = build_variant({"threads": args.threads})
    for p in pages[:1]:
        pred.predict([p.image])  # warm-up
    rounds: list[Stages] = []
    cers = []
    for _ in range(args.rounds):
        st = Stages()
        for p in pages:
            text = profile_page(pred, p.image, st)
            if not rounds:
                cers.append(docscore.cer(p.truth, text))
        rounds.append(st)
    n = len(pages)
    names = list(rounds[0].cpu)
    total = [sum(r.cpu.values()) / n for r in rounds]
    print(
        f"\n{n} pages, {args.threads} threads, {args.rounds} rounds; CPU s / page (median, range)"
    )
    print("| stage | CPU s/page | range | share | wall s/page |")
    print("|---|---|---|---|---|")
    for name in names:
        vals = [r.cpu[name] / n for r in rounds]
        walls = [r.wall[name] / n for r in rounds]
        med = statistics.median(vals)
        print(
            f"| {name} | {med:.3f} | {min(vals):.3f}-{max(vals):.3f} | "
            f"{med / statistics.median(total):.0%} | {statistics.median(walls):.3f} |"
        )
    print(f"| total | {statistics.median(total):.3f} | {min(total):.3f}-{max(total):.3f} | | |")
    b = rounds[0].batches
    lines = sum(s for s, _, _ in b)
    padded = sum(s * wd for s, wd, _ in b)
    used = sum(u for _, _, u in b)
    widths = sorted(wd for _, wd, _ in b)
    print(
        f"\nrec: {lines / n:.1f} lines/page, {len(b) / n:.1f} batches/page, mean batch "
        f"{lines / len(b):.2f}, batch width median {widths[len(widths) // 2]} px "
        f"(max {widths[-1]}), padded columns/page {padded / n:.0f}, used {used / n:.0f} "
        f"(padding waste {1 - used / padded:.1%}); mean CER {statistics.mean(cers):.4f}"
    )


# ---------------------------------------------------------------------------------------------
# variants


def run_variant(pred: PPOCREndToEnd, pages: list[Page]) -> tuple[float, float, list[str]]:
    c0, w0 = cpu_now(), time.perf_counter()
    texts = [page_text(pred.predict([p.image])[0]) for p in pages]
    return cpu_now() - c0, time.perf_counter() - w0, texts


def cmd_variants(args: argparse.Namespace, pages: list[Page]) -> None:
    specs: dict[str, dict[str, Any]] = {"baseline": {"threads": args.threads}}
    for item in args.variant:
        name, _, raw = item.partition("=")
        spec = {"threads": args.threads, **json.loads(raw)}
        specs[name] = spec
    preds = {name: build_variant(spec) for name, spec in specs.items()}
    for pred in preds.values():
        pred.predict([pages[0].image])
    cpu: dict[str, list[float]] = {k: [] for k in specs}
    wall: dict[str, list[float]] = {k: [] for k in specs}
    texts: dict[str, list[str]] = {}
    for r in range(args.rounds):
        names = list(specs) if r % 2 == 0 else list(reversed(specs))
        for name in names:
            c, w, t = run_variant(preds[name], pages)
            cpu[name].append(c / len(pages))
            wall[name].append(w / len(pages))
            texts.setdefault(name, t)
    n = len(pages)
    print(f"\n{n} pages, {args.rounds} alternating rounds (median, range); load {os.getloadavg()}")
    print(
        "| variant | CPU s/page | range | wall s/page | core use | mean CER | order-free CER "
        "| CER vs baseline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base = texts["baseline"]
    for name in specs:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        mean_cer = statistics.mean(docscore.cer(p.truth, t) for p, t in zip(pages, texts[name]))
        free = statistics.mean(
            docscore.order_free_cer(p.truth, t) for p, t in zip(pages, texts[name])
        )
        vs = statistics.mean(docscore.cer(b, t) for b, t in zip(base, texts[name]))
        print(
            f"| {name} | {c:.3f} | {min(cpu[name]):.3f}-{max(cpu[name]):.3f} | {w:.3f} | "
            f"{c / w:.2f} | {mean_cer:.4f} | {free:.4f} | {vs:.4f} |"
        )
    if args.per_page:
        for i, p in enumerate(pages):
            row = " ".join(f"{docscore.order_free_cer(p.truth, texts[k][i]):.4f}" for k in specs)
            print(p.name, row)


# ---------------------------------------------------------------------------------------------
# stream


def _worker(
    spec: dict[str, Any], jobs: Any, done: Any, ready: Any, go: Any
) -> None:  # pragma: no cover - subprocess
    pred = build_variant(spec)
    pred.predict([jobs.get()])  # warm-up on the page sent first
    ready.put(1)
    go.wait()
    c0 = cpu_now()
    count = 0
    while True:
        img = jobs.get()
        if img is None:
            break
        pred.predict([img])
        count += 1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    done.put((count, cpu_now() - c0, rss))


def stream_once(spec: dict[str, Any], workers: int, pages: list[Page], repeat: int) -> tuple:
    ctx = mp.get_context("spawn")
    jobs, done, ready, go = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_worker, args=(spec, jobs, done, ready, go)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        jobs.put(pages[0].image)
    for _ in procs:
        ready.get()
    stream = [p.image for _ in range(repeat) for p in pages]
    for img in stream:
        jobs.put(img)
    for _ in procs:
        jobs.put(None)
    time.sleep(1.0)  # the queue's feeder thread has pickled the pages before the clock starts
    w0 = time.perf_counter()
    go.set()
    results = [done.get() for _ in procs]
    elapsed = time.perf_counter() - w0
    for proc in procs:
        proc.join()
    count = sum(r[0] for r in results)
    cpu = sum(r[1] for r in results)
    return count / elapsed, cpu / count, max(r[2] for r in results), cpu / elapsed


def cmd_stream(args: argparse.Namespace, pages: list[Page]) -> None:
    layouts = args.layout or ["1x2", "2x1"]
    out: dict[str, list[tuple]] = {k: [] for k in layouts}
    for r in range(args.rounds):
        for layout in layouts if r % 2 == 0 else list(reversed(layouts)):
            workers, threads = (int(v) for v in layout.split("x"))
            spec = {**json.loads(args.spec), "threads": threads}
            out[layout].append(stream_once(spec, workers, pages, args.repeat))
    print(f"\nstream of {len(pages) * args.repeat} pages, {args.rounds} alternating rounds; spec")
    print(f"{args.spec}; load at end {os.getloadavg()} (wall figures taken under that load)")
    print("| workers x threads | pages/s (range) | CPU s/page (range) | core use | peak RSS MB |")
    print("|---|---|---|---|---|")
    for layout, rows in out.items():
        pps = [r[0] for r in rows]
        cpp = [r[1] for r in rows]
        print(
            f"| {layout} | {statistics.median(pps):.3f} ({min(pps):.3f}-{max(pps):.3f}) | "
            f"{statistics.median(cpp):.2f} ({min(cpp):.2f}-{max(cpp):.2f}) | "
            f"{statistics.median(r[3] for r in rows):.2f} | {max(r[2] for r in rows):.0f} |"
        )


# ---------------------------------------------------------------------------------------------
# nets: the networks alone, on the feeds `ocr` makes for these pages


class OpenVINONet:
    """An OpenVINO CPU compiled model with a session's ``run`` (OpenVINO is optional)."""

    def __init__(
        self, path: Path, threads: int, precision: str = "", cache: int | None = None
    ) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        if cache is not None:  # compiled shapes kept (OpenVINO's default: 5000)
            config["CPU_RUNTIME_CACHE_CAPACITY"] = cache
        if precision:  # default: the CPU's best (bf16 where it has AMX / AVX512-BF16)
            config["INFERENCE_PRECISION_HINT"] = precision
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self.compiled(list(feeds.values()))
        return [result[self.compiled.output(0)]]


def net_for(spec: str, role: str, threads: int) -> Any:
    """``ort`` (as served), ``ort-spin``, ``ort-arena``, ``ort-basic``, ``ov``; a ``:PATH``
    suffix loads another ONNX file (e.g. an int8 recogniser)."""
    from ocrserve.onnx_session import create_session
    from ocrserve.ppocr.weights import weights_path

    kind, _, path_text = spec.partition(":")
    path = Path(path_text) if path_text else weights_path(role)
    if kind == "ort":
        return create_session(path, threads)
    if kind == "ort-arena":
        return create_session(path, threads, "arena")
    if kind == "ort-spin":
        return make_session(path, threads, True, "all", "shrink")
    if kind == "ort-basic":
        return make_session(path, threads, False, "basic", "shrink")
    if kind in ("ov", "ov-f32"):
        return OpenVINONet(path, threads, "f32" if kind == "ov-f32" else "")
    raise ValueError(f"unknown engine {kind!r}")


def cmd_nets(args: argparse.Namespace, pages: list[Page]) -> None:
    from ocrserve.int8.calibration import record_feeds

    pred = build_variant({"threads": args.threads})
    det_feeds: list[dict[str, np.ndarray]] = []
    rec_feeds: list[dict[str, np.ndarray]] = []
    for p in pages:
        _, d = record_feeds(pred.detector, lambda p=p: pred.detector.detect(p.image))
        det_feeds += d
    _, rec_feeds = record_feeds(pred.recognizer, lambda: [pred.predict([p.image]) for p in pages])
    charset = pred.recognizer.charset
    feeds = {"det": det_feeds, "rec": rec_feeds}
    nets = {
        (role, spec): net_for(spec, role, args.threads)
        for role in args.role
        for spec in args.engine
    }
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in nets}
    outs: dict[tuple[str, str], list[np.ndarray]] = {}
    for key, net in nets.items():
        net.run(None, feeds[key[0]][0])  # warm-up
    for r in range(args.rounds):
        for key in list(nets) if r % 2 == 0 else list(reversed(nets)):
            c0 = cpu_now()
            res = [nets[key].run(None, f)[0] for f in feeds[key[0]]]
            cpu[key].append((cpu_now() - c0) / len(pages))
            outs.setdefault(key, res)
    print(f"\n{len(pages)} pages, {args.threads} threads, {args.rounds} alternating rounds")
    print("| net | engine | CPU s/page (median, range) | agreement with `ort` |")
    print("|---|---|---|---|")
    for (role, spec), vals in cpu.items():
        ref = outs.get((role, "ort"))
        agree = ""
        if ref is not None and role == "rec":
            a = [t for o in ref for t, _, _ in ctc_read(o, charset)]
            b = [t for o in outs[(role, spec)] for t, _, _ in ctc_read(o, charset)]
            chars = sum(len(t) for t in a)
            dist = sum(docscore.levenshtein(x, y) for x, y in zip(a, b))
            agree = f"line CER {dist / chars:.4f}, {sum(x != y for x, y in zip(a, b))} lines differ"
        elif ref is not None:
            diff = max(float(np.abs(x - y).max()) for x, y in zip(ref, outs[(role, spec)]))
            agree = f"max |prob diff| {diff:.4f}"
        print(
            f"| {role} | {spec} | {statistics.median(vals):.3f} ({min(vals):.3f}-{max(vals):.3f}) "
            f"| {agree} |"
        )


def cmd_words(args: argparse.Namespace) -> None:
    """Word accuracy of the bundled recogniser and of ``--rec-model`` on a labelled crop set
    (``textset-public/rec``: ``labels.txt`` of ``path<TAB>label``): the scene-text budget."""
    root = Path(args.crops)
    rows = [line.split("\t", 1) for line in (root / "labels.txt").read_text("utf-8").splitlines()]
    crops = [cv2.imread(str(root / path), cv2.IMREAD_COLOR) for path, _ in rows]
    labels = [label for _, label in rows]
    models: dict[str, Path | None] = {"fp32": None, "other": None}
    if args.rec_model:
        models["other"] = Path(args.rec_model)
    reads: dict[str, list[str]] = {}
    for name, model in models.items():
        rec = PPOCRRecognizer(args.threads, model=model)
        if name == "other" and args.engine != "ort":
            from ocrserve.ppocr.weights import weights_path

            precision = "f32" if args.engine == "ov-f32" else ""
            rec.session = OpenVINONet(model or weights_path("rec"), args.threads, precision)
        c0 = cpu_now()
        reads[name] = [t for t, _, _ in rec.read(crops)]
        print(f"{name}: {cpu_now() - c0:.1f} CPU s for {len(crops)} crops", flush=True)
    print("| recogniser | word accuracy | mean CER | agreement with FP32 |")
    print("|---|---|---|---|")
    for name, texts in reads.items():
        acc = sum(t == lab for t, lab in zip(texts, labels)) / len(labels)
        mean_cer = statistics.mean(docscore.cer(lab, t) for t, lab in zip(texts, labels))
        agree = sum(a == b for a, b in zip(texts, reads["fp32"])) / len(labels)
        print(f"| {name} | {acc:.4f} | {mean_cer:.4f} | {agree:.4f} |")


def cmd_memory(args: argparse.Namespace, pages: list[Page]) -> None:
    """RSS of one process serving ``--spec`` page after page (``--passes`` over the pages)."""
    import psutil

    proc = psutil.Process()
    spec = {"threads": args.threads, **json.loads(args.spec)}
    pred = build_variant(spec)
    print(f"{args.spec}: loaded RSS {proc.memory_info().rss / 2**20:.0f} MB", flush=True)
    for n in range(args.passes):
        for p in pages:
            c0 = cpu_now()
            pred.predict([p.image])
            rss = proc.memory_info().rss / 2**20
            print(f"pass {n} {p.name}: {cpu_now() - c0:.2f} CPU s, RSS {rss:.0f} MB", flush=True)


# ---------------------------------------------------------------------------------------------
# int8


def cmd_int8(args: argparse.Namespace, pages: list[Page]) -> None:
    """Quantize the bundled recogniser on the line crops of these (calibration) pages, exactly as
    the FP32 `ocr` hands them to it (its own detector, crops, classifier and batching)."""
    from ocrserve.int8.calibration import record_feeds
    from ocrserve.int8.quantizer import Int8Settings, quantize_onnx
    from ocrserve.ppocr.weights import weights_path

    pred = build_variant({"threads": args.threads})
    _, feeds = record_feeds(pred.recognizer, lambda: [pred.predict([p.image]) for p in pages])
    settings = Int8Settings(**json.loads(args.settings))
    c0 = cpu_now()
    data, kept, applied = quantize_onnx(weights_path("rec"), feeds, settings)
    Path(args.out).write_bytes(data)
    print(
        f"{args.out}: {len(feeds)} feeds recorded from {len(pages)} pages, kept FP32 {kept}, "
        f"preparation {applied}, {cpu_now() - c0:.0f} CPU s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docset", help="folder of PNG pages with .txt ground truth")
    parser.add_argument("--pdf", nargs="*", default=[], help="PDF files to render")
    parser.add_argument("--per-doc", type=int, default=2)
    parser.add_argument("--min-chars", type=int, default=800)
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--half", default="tune", help="docset half (tune; never tune on report)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many pages, spread")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("profile")
    var = sub.add_parser("variants")
    var.add_argument("--variant", action="append", default=[], help="NAME=JSON")
    var.add_argument("--per-page", action="store_true")
    stream = sub.add_parser("stream")
    stream.add_argument("--layout", action="append", help="WORKERSxTHREADS")
    stream.add_argument("--spec", default="{}", help="variant JSON for every worker")
    stream.add_argument("--repeat", type=int, default=1)
    nets = sub.add_parser("nets")
    nets.add_argument("--role", action="append", default=[], help="det, rec")
    nets.add_argument("--engine", action="append", default=[], help="ort, ov, ort-spin, ...")
    words = sub.add_parser("words")
    words.add_argument("--crops", default="/work/shared/data/textset-public/rec")
    words.add_argument("--rec-model", help="another recogniser ONNX file (an int8 one)")
    words.add_argument("--engine", default="ort", help="ort, ov (bf16 if the CPU has it), ov-f32")
    mem = sub.add_parser("memory")
    mem.add_argument("--spec", default="{}")
    mem.add_argument("--passes", type=int, default=2)
    q = sub.add_parser("int8")
    q.add_argument("--out", required=True)
    q.add_argument("--settings", default="{}", help="Int8Settings fields as JSON")
    args = parser.parse_args(argv)
    if args.cmd == "words":
        cmd_words(args)
        return 0
    pages = load_pages(args)
    if not pages:
        parser.error("no pages: give --docset DIR or --pdf FILE ...")
    print(f"pages: {len(pages)} ({', '.join(p.name for p in pages)})")
    commands = {"profile": cmd_profile, "variants": cmd_variants, "stream": cmd_stream}
    commands["int8"] = cmd_int8
    commands["nets"] = cmd_nets
    commands["memory"] = cmd_memory
    commands[args.cmd](args, pages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

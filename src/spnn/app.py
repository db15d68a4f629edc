"""`spnn app`: an interactive editor in the browser (gradio, the ``app`` extra).

Four tabs, each also a named API endpoint for `gradio_client`: **Edit** (``/edit``: require attributes on or off,
leave the others free), **Reconstruct** (``/reconstruct``: a face -> its attributes -> three samples with the
same attributes), **Generate** (``/generate``: a batch with chosen attributes) and **Restore** (``/restore``:
super-resolution, inpainting, colorization and the non-linear degradations). Everything runs through
`spnn.tasks`; the app holds no algorithm of its own. It runs offline: analytics off, no share link, no fonts or
scripts fetched, bound to 127.0.0.1 unless told otherwise.

An image is a built-in held-out test face (``face`` = its index) or an uploaded file (``upload``, a path); bad
uploads are refused with the library's one-line message in the page.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from spnn.errors import ConfigError

__all__ = ["EditorModels", "build_app", "launch"]

CHOICES = ("free", "on", "off")
RESTORE_TASKS = ("sr4", "sr2", "inpaint", "colorize", "tone-sr4", "tone-inpaint", "tone-gray", "log-sr4")
N_FACES = 16
PINV_CHOICES = ("learned", "learned+labels", "natural")
KEEP_CHOICES = ("auto", "off", "0.5", "1", "2")
TRAVEL_CHOICES = ("auto", "off", "1,2", "1,3", "2,2")
CSS = ".pixels img { image-rendering: pixelated; }"  # 32x32 images shown large, not blurred


class EditorModels:
    """The models the app serves (the shipped ones by default) and the held-out faces it offers."""

    def __init__(self, spnn=None, prior=None, evaluator=None, device: str = "cpu", data_n: int = 30000):
        from spnn.data.avatars import AvatarFaces
        from spnn.models import load_evaluator, load_prior, load_spnn
        from spnn.tasks import check_pair

        self.device = torch.device(device)
        self.net = load_spnn(spnn, device)
        self.prior = load_prior(prior, device, image_size=self.net.input_shape[1])
        self.evaluator = None if evaluator == "none" else load_evaluator(evaluator, device)
        from spnn.operators import SPNNOperator

        check_pair(self.prior, SPNNOperator(self.net))
        self.names = list(self.net.attribute_names or [f"y{i}" for i in range(self.net.output_shape[0])])
        self.faces = AvatarFaces.head("test", N_FACES, size=self.prior.image_shape[1], n=data_n).tensors()[0]

    def operator(self, pinv: str = "learned"):
        """``pinv``: "learned", "natural" or "learned+labels" (learned latents from the labels, `SPNNOperator`)."""
        from spnn.operators import SPNNOperator

        if pinv not in PINV_CHOICES:
            raise ConfigError(f"unknown pseudo-inverse {pinv!r}; choose one of {PINV_CHOICES}")
        mode, _, labels = pinv.partition("+")
        return SPNNOperator(self.net, mode=mode, latents_from="labels" if labels else "logits")

    def image(self, face, upload) -> torch.Tensor:
        """(1, C, H, W) in [-1, 1]: the uploaded file if any, else built-in face number ``face``."""
        from spnn.data.common import to_tensor_images
        from spnn.data.real import load_image
        from spnn.errors import ConfigError

        if isinstance(upload, dict):  # a file sent through the API (gradio's FileData)
            upload = upload.get("path")
        if upload:
            size = self.prior.image_shape[1]
            return to_tensor_images(load_image(upload, size, min_side=max(1, size // 2))[None]).to(self.device)
        i = int(face or 0)
        if not 0 <= i < len(self.faces):
            raise ConfigError(f"face must be 0..{len(self.faces) - 1}, got {face}")
        return self.faces[i:i + 1].to(self.device)

    def logits(self, x: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return dict(zip(self.names, (round(float(v), 2) for v in self.net(x)[0])))

    def judged(self, x: torch.Tensor) -> list[str] | None:
        """The attributes the independent evaluator sees (positive logits)."""
        if self.evaluator is None:
            return None
        with torch.no_grad():
            pred = self.evaluator.predict(x.clamp(-1, 1))[0] > 0
        return [n for n, p in zip(self.evaluator.attribute_names, pred.tolist()) if p]


def _png(x: torch.Tensor) -> np.ndarray:
    from spnn.viz import to_uint8

    return to_uint8(x.detach().cpu())[0]


def _show(out: tuple) -> tuple:
    """The page's copies of an action's images, enlarged (nearest neighbour) to at least 256 pixels."""
    def big(a):
        if not isinstance(a, np.ndarray):
            return [big(b) for b in a] if isinstance(a, list) else a
        k = max(1, -(-256 // a.shape[0]))
        return a.repeat(k, axis=0).repeat(k, axis=1)
    return tuple(big(o) for o in out)


def _attributes(settings: dict[str, str]) -> dict[str, float]:
    """{name: "on" | "off" | "free"} -> the tasks' {name: 1 | 0}; unknown values are refused."""
    from spnn.errors import ConfigError

    out = {}
    for name, value in (settings or {}).items():
        if value not in CHOICES:
            raise ConfigError(f"attribute {name}: {value!r} is not one of {CHOICES}")
        if value != "free":
            out[name] = 1.0 if value == "on" else 0.0
    if not out:
        raise ConfigError("require at least one attribute on or off")
    return out


class Editor:
    """The app's actions, one per tab and API endpoint; each calls `spnn.tasks` and returns what the page shows."""

    def __init__(self, models: EditorModels):
        self.m = models

    def edit(self, face: int = 0, upload: str | None = None, attributes: dict | None = None, steps: int = 100,
             t_start: int = 0, eta: float = 0.3, pinv: str = "learned", preset: str = "spnn",
             implied: bool = True, region: float = 0.0, keep: str = "auto"):
        from spnn.calibration import calibration_of
        from spnn.tasks import edit, parse_keep

        x = self.m.image(face, upload)
        attrs = _attributes(attributes)
        op = self.m.operator(pinv)
        for name in attrs:
            if name not in self.m.names:
                from spnn.errors import DataError

                raise DataError(f"unknown attribute {name!r}; known: {', '.join(self.m.names)}")
        keep = parse_keep(keep)  # checked before any work
        stored = int(t_start) == 0  # the SPNN's stored start for these attributes (else 500, inverted)
        res = edit(self.m.prior, op, x, attrs, steps=int(steps), t_start=None if stored else int(t_start),
                   invert=None if stored else True, eta=float(eta),
                   preset=preset, seeds=[0], progress=True, implied=bool(implied),
                   region=float(region) if float(region) > 0 else "auto",  # 0: the SPNN's stored region, if any
                   keep=keep)
        with torch.no_grad():
            violation = float(res.violation(self.m.net(res.images))[0])
        calib = calibration_of(op)
        reach = float(res.info["reach"][0])
        report = {"bound_violation": round(violation, 4), "reach": round(reach, 3), "also_set": res.info["implied"],
                  "start": res.info["start"], "levels": res.info["levels"], "keep": res.info.get("keep"),
                  "range_rule": res.info.get("range_rule"),
                  "edited": bool(res.info.get("edited", torch.ones(1, dtype=torch.bool))[0]),
                  "region_area": round(float(res.info["region"].mean()), 3) if "region" in res.info else None}
        if not report["edited"]:
            report["warning"] = (f"out of the SPNN's reach (one NLBP step goes to |x| {reach:.2f} > "
                                 f"{calib.reach_max:g}): returned unedited")
        before, after = self.m.judged(x), self.m.judged(res.images)
        if before is not None:
            report["evaluator_changed"] = {"now_on": sorted(set(after) - set(before)),
                                           "now_off": sorted(set(before) - set(after))}
        return _png(x), _png(res.images), report

    def reconstruct(self, face: int = 0, upload: str | None = None, steps: int = 100, pinv: str = "learned+labels",
                    preset: str = "spnn"):
        from spnn.tasks import reconstruct

        x = self.m.image(face, upload).expand(3, -1, -1, -1)
        res = reconstruct(self.m.prior, self.m.operator(pinv), x, steps=int(steps), seeds=[0, 1, 2],
                          preset=preset, progress=True)
        with torch.no_grad():
            consistency = float((self.m.net(res.images) - res.targets).abs().max())
        travel = res.info["travel"]
        report = {"attributes": self.m.judged(x[:1]), "max_abs_g_minus_y": consistency, "slack": res.info["slack"],
                  "travel": None if travel is None else list(travel)}
        return _png(x[:1]), [_png(res.images[i:i + 1]) for i in range(3)], report

    def generate(self, attributes: dict | None = None, n: int = 4, steps: int = 100, preset: str = "spnn",
                 implied: bool = True, travel: str = "auto"):
        from spnn.tasks import generate, parse_travel

        n = int(n)
        if not 1 <= n <= 16:
            from spnn.errors import ConfigError

            raise ConfigError(f"n must be 1..16, got {n}")
        travel = parse_travel(travel)  # checked before any work
        res = generate(self.m.prior, self.m.operator(), _attributes(attributes), n, steps=int(steps),
                       seeds=list(range(n)), preset=preset, progress=True, implied=bool(implied), travel=travel)
        with torch.no_grad():
            met = (res.violation(self.m.net(res.images)) <= 0.05).tolist()
        travel = res.info["travel"]
        return [_png(res.images[i:i + 1]) for i in range(n)], {"bounds_met": met, "also_set": res.info["implied"],
                                                              "travel": None if travel is None else list(travel)}

    def restore(self, face: int = 0, upload: str | None = None, task: str = "sr4", steps: int = 100,
                preset: str = "spnn"):
        from spnn.degradations import EXACT_TASKS, exact_operator
        from spnn.errors import ConfigError
        from spnn.evaluation.metrics import psnr
        from spnn.operators import AveragePool, Colorization, Inpainting
        from spnn.tasks import restore

        shape = self.m.prior.image_shape
        ops = {"sr4": lambda: AveragePool(shape, 4), "sr2": lambda: AveragePool(shape, 2),
               "colorize": lambda: Colorization(shape),
               "inpaint": lambda: Inpainting.box(shape, shape[1] // 4, shape[2] // 4, shape[1] // 2, shape[2] // 2)}
        ops |= {t: (lambda t=t: exact_operator(t, shape)) for t in EXACT_TASKS}
        if task not in ops:
            raise ConfigError(f"unknown restoration task {task!r}; choose one of {sorted(ops)}")
        x = self.m.image(face, upload)
        op = ops[task]().to(x)
        res = restore(self.m.prior, op, x, steps=int(steps), seeds=[0], preset=preset, progress=True)
        with torch.no_grad():
            shown = op.pinv(res.targets)
            report = {"psnr_db": round(float(psnr(res.images.clamp(-1, 1), x).mean()), 2),
                      "consistency_max_abs": float((op.A(res.images) - res.targets).abs().max())}
        return _png(x), _png(shown.clamp(-1, 1)), _png(res.images), report


def _guard(fn):
    """Run an action; spnn's own errors (bad uploads, bad settings) become a message in the page."""
    import functools

    import gradio as gr

    from spnn.errors import SPNNError

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SPNNError as e:
            raise gr.Error(str(e), print_exception=False) from None
    return wrapped


def build_app(models: EditorModels, steps: int = 100):
    """The gradio Blocks of the editor (not launched)."""
    import gradio as gr

    ed = Editor(models)
    names = models.names
    faces = [str(i) for i in range(len(models.faces))]

    def radios():
        return [gr.Radio(CHOICES, value="free", label=name, min_width=150, elem_classes="attribute")
                for name in names]

    def implied_box():
        return gr.Checkbox(True, label="also set what the chosen attributes imply in the training labels (e.g. "
                           "Gray_Hair on: the other hair colours off)")

    def advanced(with_t_start: bool = False, pinv: str = "learned", implied: bool = False):
        with gr.Accordion("advanced", open=False):
            out = [gr.Slider(1, 1000, value=steps, step=1, label="steps")]
            if with_t_start:
                out += [gr.Slider(0, 999, value=0, step=1, label="t-start (0: the start the SPNN stores for the "
                                  "chosen attributes, else 500 from the DDIM inversion)"),
                        gr.Slider(0, 1, value=0.3, step=0.05, label="eta")]
            out += [gr.Radio(list(PINV_CHOICES), value=pinv, label="pseudo-inverse (learned+labels: other faces "
                             "with the attributes)"),
                    gr.Radio(["spnn", "paper"], value="spnn", label="preset")]
            if implied:
                out.append(implied_box())
            if with_t_start:  # the Edit tab
                out.append(gr.Slider(0, 0.95, value=0, step=0.05, label="region (0: the whole image, or the region "
                                     "the SPNN stores; else only where the SPNN's own step moves pixels by at least "
                                     "this fraction of its largest move)"))
                out.append(gr.Dropdown(KEEP_CHOICES, value="auto", allow_custom_value=True, elem_id="edit-keep",
                                       label="keep the other attributes on the original's side (auto: the margin the "
                                       "SPNN stores for the chosen attributes; off; or a margin in logits)"))
        return out

    with gr.Blocks(title="spnn editor", analytics_enabled=False) as app:
        gr.Markdown("## spnn: edit, reconstruct, generate and restore with a pseudo-invertible network\n"
                    "Pick a held-out face or upload an image. The SPNN's constraint g(x) = y is enforced by "
                    "non-linear back-projection inside the diffusion sampler.")
        with gr.Tab("Edit"):
            with gr.Row():
                with gr.Column(scale=1):
                    face = gr.Dropdown(faces, value="0", label="built-in face")
                    upload = gr.Image(type="filepath", label="or upload an image", sources=["upload"], height=160)
                    opts = advanced(with_t_start=True, implied=True)
                    go = gr.Button("Edit", variant="primary", elem_id="edit-button")
                with gr.Column(scale=2):
                    with gr.Row():
                        orig = gr.Image(label="original", elem_id="edit-original", height=256,
                                        elem_classes="pixels")
                        result = gr.Image(label="edited", elem_id="edit-result", height=256, elem_classes="pixels")
                    report = gr.JSON(label="report", elem_id="edit-report")
            gr.Markdown("Require each attribute **on** or **off**, or leave it **free**; the number is the SPNN's "
                        "current logit of the image.")
            with gr.Row():
                attr = radios()

            def show_logits(f, u):
                values = models.logits(models.image(f, u))
                return [gr.update(label=f"{n}  {values[n]:+.1f}") for n in names]

            face.change(_guard(show_logits), [face, upload], attr, api_visibility="private")
            upload.change(_guard(show_logits), [face, upload], attr, api_visibility="private")
            app.load(_guard(show_logits), [face, upload], attr, api_visibility="private")

            def edit_ui(f, u, *values):
                settings = dict(zip(names, values[:len(names)]))
                s, t, e, pinv, preset, implied, region, keep = values[len(names):]
                return _show(ed.edit(f, u, settings, s, t, e, pinv, preset, implied, region, keep))

            go.click(_guard(edit_ui), [face, upload, *attr, *opts], [orig, result, report], api_visibility="private")
        with gr.Tab("Reconstruct"):
            with gr.Row():
                rface = gr.Dropdown(faces, value="0", label="built-in face")
                rupload = gr.Image(type="filepath", label="or upload an image", sources=["upload"])
            ropts = advanced(pinv="learned+labels")
            rgo = gr.Button("Reconstruct from its attributes", variant="primary")
            rorig = gr.Image(label="original")
            rgal = gr.Gallery(label="three samples with the same attributes", columns=3)
            rrep = gr.JSON(label="report")
            rgo.click(_guard(lambda f, u, s, p, pr: _show(ed.reconstruct(f, u, s, p, pr))), [rface, rupload, *ropts],
                      [rorig, rgal, rrep], api_visibility="private")
        with gr.Tab("Generate"):
            with gr.Row():
                gattr = radios()
            gn = gr.Slider(1, 16, value=4, step=1, label="images")
            gsteps = gr.Slider(1, 1000, value=steps, step=1, label="steps")
            gpreset = gr.Radio(["spnn", "paper"], value="spnn", label="preset")
            gimplied = implied_box()
            gtravel = gr.Dropdown(TRAVEL_CHOICES, value="auto", allow_custom_value=True, elem_id="generate-travel",
                                  label="time travel L,R: after each step go back L steps and redo them R times "
                                  "(auto: what the SPNN stores; off)")
            ggo = gr.Button("Generate", variant="primary")
            ggal = gr.Gallery(label="generated", columns=4)
            grep = gr.JSON(label="report")

            def gen_ui(*values):
                settings = dict(zip(names, values[:len(names)]))
                return _show(ed.generate(settings, *values[len(names):]))

            ggo.click(_guard(gen_ui), [*gattr, gn, gsteps, gpreset, gimplied, gtravel], [ggal, grep],
                      api_visibility="private")
        with gr.Tab("Restore"):
            with gr.Row():
                sface = gr.Dropdown(faces, value="0", label="built-in face")
                supload = gr.Image(type="filepath", label="or upload an image", sources=["upload"])
            stask = gr.Dropdown(list(RESTORE_TASKS), value="sr4", label="degradation")
            ssteps = gr.Slider(1, 1000, value=steps, step=1, label="steps")
            spreset = gr.Radio(["spnn", "paper"], value="spnn", label="preset")
            sgo = gr.Button("Restore", variant="primary")
            with gr.Row():
                sorig, sdeg, sres = gr.Image(label="original"), gr.Image(label="A+ y"), gr.Image(label="restored")
            srep = gr.JSON(label="report")
            sgo.click(_guard(lambda f, u, t, s, p: _show(ed.restore(f, u, t, s, p))), [sface, supload, stask, ssteps,
                                                                              spreset], [sorig, sdeg, sres, srep],
                      api_visibility="private")

        # the named API: plain arguments (attributes as {name: "on" | "off" | "free"})
        from gradio.data_classes import FileData

        gr.api(_guard(_api(ed.edit, tuple[FileData, FileData, dict])), api_name="edit")
        gr.api(_guard(_api(ed.reconstruct, tuple[FileData, list[FileData], dict])), api_name="reconstruct")
        gr.api(_guard(_api(ed.generate, tuple[list[FileData], dict])), api_name="generate")
        gr.api(_guard(_api(ed.restore, tuple[FileData, FileData, FileData, dict])), api_name="restore")
    return app


def _api(action, returns):
    """An API function with the action's typed parameters; images come back as PNG files, reports as dicts."""
    import inspect
    import tempfile

    from gradio.data_classes import FileData
    from PIL import Image

    def save(a) -> FileData:
        fd, path = tempfile.mkstemp(suffix=".png", prefix="spnn-app-")
        os.close(fd)
        Image.fromarray(a).save(path)
        return FileData(path=path)

    def call(*args, **kwargs):
        out = action(*args, **kwargs)
        return tuple([save(a) for a in o] if isinstance(o, list) else save(o) if isinstance(o, np.ndarray) else o
                     for o in out)

    call.__signature__ = inspect.signature(action).replace(return_annotation=returns)
    call.__annotations__ = {**{k: v for k, v in action.__annotations__.items() if k != "return"}, "return": returns}
    call.__name__, call.__doc__ = action.__name__, action.__doc__
    return call


def launch(models: EditorModels, host: str = "127.0.0.1", port: int = 7860, steps: int = 100,
           block: bool = True):
    """Build and serve the app (queue on: concurrent users wait their turn). Returns the app."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    app = build_app(models, steps=steps)
    app.queue(default_concurrency_limit=1)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace",
                                                                                           "monospace"])
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, quiet=not block,
               theme=theme, css=CSS, ssr_mode=False, show_error=True, allowed_paths=[str(Path(os.environ.get(
                   "TMPDIR", "/tmp")))])
    return app

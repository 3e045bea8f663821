"""Recording: every cell run is kept in a notebook (:class:`~kconsole.notebook.NotebookRecorder`),
saved at exit with ``--save``, or any time with Ctrl-X s."""

from __future__ import annotations

import time
from pathlib import Path

from ..notebook import STREAM_KEPT_CHARS, NotebookRecorder
from .base import ReplParts


class RecordingPart(ReplParts):
    """The session's notebook."""

    def _init_recording(self, recorder: NotebookRecorder | None) -> None:
        #: Saved at exit only when given (--save); Ctrl-X s saves it any time.
        self._save_at_exit = recorder is not None
        # Without --save only Ctrl-X s reads it: long stream outputs keep their start
        # and end, nothing is written to a temporary file.
        self.recorder = recorder if recorder is not None else NotebookRecorder("", keep_all=False)
        self._save_path_chosen = False

    def save_notebook(self) -> Path | None:
        """Ctrl-X s: write the cells run so far; to the --save path if there is one,
        else to ./kconsole-YYYYmmdd-HHMMSS.ipynb (chosen at the first save)."""
        rec = self.recorder
        if not self._save_at_exit and not self._save_path_chosen:
            rec.path = Path.cwd() / time.strftime("kconsole-%Y%m%d-%H%M%S.ipynb")
            self._save_path_chosen = True
        try:
            path = rec.save()
        except OSError as e:
            self.note(f"could not save the notebook: {e}")
            return None
        n, cut = len(rec.cells), rec.outputs_cut()
        said = f"saved {n} cell{'s' if n != 1 else ''} to {path}"
        if cut:
            # Said here, not only in the notebook: the user may not open it soon.
            outputs, their = ("outputs", "their") if cut != 1 else ("output", "its")
            said += (
                f" ({cut} long {outputs} kept only {their} first and last"
                f" {STREAM_KEPT_CHARS // 1024} K characters; --save FILE.ipynb keeps"
                " every output whole)"
            )
        self.note(said)
        return path

    def _start_recording(self) -> None:
        spec = self.conn.spec
        self.recorder.set_kernel(
            self.client.kernel_info,
            name=spec.name if spec is not None else "",
            display_name=spec.display_name if spec is not None else "",
        )

    def _save_recording(self) -> None:
        if not self._save_at_exit:
            return
        try:
            path = self.recorder.save()
        except OSError as e:
            self.printer.note(f"[kconsole] could not save the notebook: {e}")
        else:
            self.printer.note(f"[kconsole] notebook saved to {path}")
        self.printer.flush()

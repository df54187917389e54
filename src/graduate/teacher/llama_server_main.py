"""The local teacher's server process: llama-cpp-python's own OpenAI-compatible app, run by uvicorn.

    python -m graduate.teacher.llama_server_main SETTINGS.json

It differs from ``python -m llama_cpp.server`` in serving on the listening socket the parent passes
(``listen_fd``) and in where settings come from: the JSON file alone. llama-cpp-python's settings
are pydantic ``BaseSettings`` that also read environment variables (``PORT``, ``HOST``,
``API_KEY``, ``N_CTX``, ``CONFIG_FILE`` ...), so a user's unrelated ``PORT=3000`` would otherwise
move the server away from the port we wait on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m graduate.teacher.llama_server_main SETTINGS.json")
    config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    # Read once: gone now, so a kill -9 of the graduate process leaves no file behind (the parent
    # writes it again before a restart).
    Path(argv[1]).unlink(missing_ok=True)

    from llama_cpp.server.settings import ModelSettings, ServerSettings

    names = {n.lower() for n in [*ModelSettings.model_fields, *ServerSettings.model_fields, "config_file"]}
    for key in list(os.environ):
        if key.lower() in names:
            del os.environ[key]

    import llama_cpp.llama_cpp as capi
    import uvicorn
    from llama_cpp.server.app import create_app

    if not config.get("extra_buffers", False):
        # llama.cpp repacks weights into "extra buffer types" (AMX on CPUs that report it); on
        # such CPUs its AMX matmul segfaults on the first Q4_K/Q6_K evaluation
        # (https://github.com/ggml-org/llama.cpp/issues/20824), so the server died on its first
        # request here. llama-cpp-python has no setting for it: default the model params to off.
        default_params = capi.llama_model_default_params

        def without_extra_buffers():
            params = default_params()
            params.use_extra_bufts = False
            return params

        capi.llama_model_default_params = without_extra_buffers

    _fast_logprobs()
    if config.get("parent_pid"):
        _stop_with_parent(int(config["parent_pid"]))
    server = ServerSettings(**config["server"])
    app = create_app(server_settings=server, model_settings=[ModelSettings(**config["model"])])
    log_level = config.get("log_level", "warning")
    if config.get("listen_fd") is None:
        uvicorn.run(app, host=server.host, port=server.port, log_level=log_level)
        return
    # The socket the parent bound and listens on (LocalServer, listen_on): its port was ours from
    # the moment it was chosen, so no other process can take it before this one serves.
    import socket

    listening = socket.socket(fileno=int(config["listen_fd"]))
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[listening])


def _stop_with_parent(parent_pid: int, every_s: float = 1.0, grace_s: float = 10.0) -> None:
    """Stop once the graduate process that started this server is gone. It stops the server itself
    on any exit it sees; after kill -9 nothing would, and the model (and its port) stayed loaded
    for good: the server runs in its own session, so not even the terminal reaches it."""
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down in order
        time.sleep(grace_s)
        os._exit(1)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


class _LazyLogprobRows:
    """The answer's log-probabilities, row by row, as Python lists.

    For ``logprobs`` llama-cpp-python (0.3.36, ``Llama._create_completion``) takes
    ``logits_to_logprobs(all scores)[offset:]`` and sorts each answer row in Python with
    ``sorted(zip(row, range(n_vocab)))``: on numpy scalars that is about a second per answer token
    for Qwen's 152k vocabulary, on Python floats a small fraction of it. Rows are also computed
    only for the answer tokens, not for every prompt token.
    """

    def __init__(self, logits, to_logprobs):
        self._logits = logits
        self._to_logprobs = to_logprobs

    def __len__(self) -> int:
        return len(self._logits)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [row.tolist() for row in self._to_logprobs(self._logits[index])]
        return self._to_logprobs(self._logits[index]).tolist()


def _fast_logprobs() -> None:
    import numpy as np
    from llama_cpp.llama import Llama

    original = Llama.logits_to_logprobs

    def logits_to_logprobs(logits, axis: int = -1):
        if isinstance(logits, np.ndarray) and logits.ndim == 2 and axis == -1:
            return _LazyLogprobRows(logits, original)
        return original(logits, axis=axis)

    Llama.logits_to_logprobs = staticmethod(logits_to_logprobs)


if __name__ == "__main__":
    main(sys.argv)

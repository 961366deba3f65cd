"""Where pretrained weights come from: an explicit file, torchvision's cache, or a download.

Resolution order for a torchvision model:

1. an explicit file (``--weights PATH`` in the CLI, the file field of the widget);
2. the file in the directory named by ``NAPARI_DEEPSEG_WEIGHTS_DIR`` (machines with no internet);
3. torchvision's own cache, ``$TORCH_HOME/hub/checkpoints`` (weights a user already has are reused);
4. a download with a progress bar into that cache, unless ``allow_download=False``.

Before a download the host (or the proxy) is probed with a short timeout
(:func:`unreachable_cause`), so a machine with no network fails in a second, not
after the downloader's retries. A missing checkpoint raises
:class:`WeightsUnavailableError`, which carries the facts (file, URL, folders
searched, the cause in words); the CLI and the widgets word them each in their
own terms (``--weights PATH`` vs. the *weights* field).

Checkpoints are always read with ``torch.load(..., weights_only=True)`` or
safetensors, so loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlsplit

ENV_WEIGHTS_DIR = "NAPARI_DEEPSEG_WEIGHTS_DIR"
#: seconds the host of a download may take to accept a connection before it counts as unreachable
PROBE_TIMEOUT = 2.0
NO_INTERNET = "no internet connection"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be found or downloaded (message is one line).

    Parameters
    ----------
    message : str, optional
        The whole message, for errors that are not about a missing checkpoint
        (an unreadable file). Default: :meth:`cli_message` of the facts below.
    file : str, optional
        The checkpoint's file name (``resnet50-11ad3fa6.pth``) or model id.
    url : str, optional
        Where it is downloaded from.
    searched : sequence of path-like
        The folders it was looked for in.
    cause : str, optional
        Why it could not be downloaded, in words (``"no internet connection"``).
    option : str
        The command-line option that names a local copy.
    what : str
        What the file is, as the message's first words.
    local : str
        What a local copy is (``"the file"``, ``"a folder saved with save_pretrained"``).
    override_env : str, optional
        The environment variable naming a folder of local copies, if there is one.
    fetch : str, optional
        How to get a copy, when it is not "download URL".

    Notes
    -----
    ``str(error)`` is the command-line wording; a widget uses
    :meth:`gui_message`, which names its *weights* field instead of an option.
    """

    def __init__(self, message: Optional[str] = None, *, file: Optional[str] = None, url: Optional[str] = None,
                 searched: Sequence = (), cause: Optional[str] = None, option: str = "--weights",
                 what: str = "pretrained weights", local: str = "the file",
                 override_env: Optional[str] = ENV_WEIGHTS_DIR, fetch: Optional[str] = None):
        self.file, self.url, self.cause, self.option = file, url, cause, option
        self.searched = tuple(str(s) for s in searched)
        self.what, self.local, self.override_env, self.fetch = what, local, override_env, fetch
        self._message = message
        super().__init__(message or self.cli_message())

    def __str__(self) -> str:
        return self.cli_message() if self.has_facts else (self._message or super().__str__())

    @property
    def has_facts(self) -> bool:
        """Whether the error is about a missing checkpoint (file and folders known)."""
        return self._message is None and self.file is not None

    def _missing(self) -> str:
        where = f" in {', '.join(self.searched)}" if self.searched else ""
        if self.cause:
            return f"{self.what} '{self.file}' not found{where} and cannot be downloaded ({self.cause})"
        return f"{self.what} '{self.file}' not found{where}"

    def _fetch(self) -> str:
        if self.fetch:
            return self.fetch
        if self.url:
            return f"download {self.url}" + (" on a machine with internet" if self.cause == NO_INTERNET else "")
        return "download it once with internet"

    def cli_message(self, option: Optional[str] = None) -> str:
        """The message in command-line terms: ``pass it with --weights PATH``."""
        if not self.has_facts:
            return self._message or ""
        env = f" (or put it in ${self.override_env})" if self.override_env else ""
        join = ", or" if self.fetch else " and"  # "run it once with internet, or pass ..." / "download URL and pass ..."
        return f"{self._missing()}; {self._fetch()}{join} pass {self.local} with {option or self.option} PATH{env}"

    def gui_message(self, field: Optional[str] = "weights") -> str:
        """The message in a widget's terms: ``choose the file in *weights*, or put it in …``.

        Parameters
        ----------
        field : str, optional
            The widget's field that takes a local copy; ``None`` when it has none.
        """
        if not self.has_facts:
            return str(self)
        if self.fetch:  # a cache of its own layout (Hugging Face): no file to put anywhere
            return f"{self._missing()}; {self._fetch()}" + (f", or choose {self.local} in *{field}*" if field else "")
        places = [self.searched[-1]] if self.searched else []
        if self.override_env:
            places.append(f"the folder named by {self.override_env}")
        put = f"put it in {' or '.join(places)}" if places else ""
        choose = f"choose {self.local} in *{field}*" if field else ""
        how = ", or ".join(p for p in (choose, put) if p)
        return f"{self._missing()}; {self._fetch()}, then {how}"


def network_cause(exc: BaseException) -> str:
    """Why a download failed, in words (``"no internet connection"``, ``"the server answered 404"``).

    Examples
    --------
    >>> import urllib.error
    >>> network_cause(urllib.error.URLError(socket.gaierror(-2, "Name or service not known")))
    'no internet connection'
    >>> network_cause(urllib.error.HTTPError("http://x", 404, "Not Found", None, None))
    'the server answered 404 Not Found'
    """
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    seen = set()
    chain = exc
    while chain is not None and id(chain) not in seen:  # the URLError's reason, requests' / httpx' causes
        seen.add(id(chain))
        if isinstance(chain, (socket.gaierror, ConnectionError)):
            return NO_INTERNET
        if isinstance(chain, (socket.timeout, TimeoutError)):
            return "the download timed out"
        name = type(chain).__name__
        if "Connect" in name or "Offline" in name:
            return NO_INTERNET
        if "Timeout" in name:
            return "the download timed out"
        reason = getattr(chain, "reason", None)
        chain = reason if isinstance(reason, BaseException) else (chain.__cause__ or chain.__context__)
    text = " ".join(str(exc).split())[:120]
    return f"download failed: {type(exc).__name__}" + (f": {text}" if text else "")


def _endpoint(url: str) -> tuple:
    """``(host, port)`` a request for ``url`` connects to first: the URL's host, or its proxy's."""
    import urllib.request

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return p.hostname or host, p.port or 80
    return host, port


def unreachable_cause(url: str, timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """``None`` when the host of ``url`` (or the proxy in between) accepts a connection, else why not.

    A DNS lookup that hangs counts as unreachable after ``timeout`` seconds too
    (the probe runs in a daemon thread).

    Examples
    --------
    >>> unreachable_cause("https://127.0.0.1:9/x", timeout=0.5)  # nothing listens on port 9
    'no internet connection'
    """
    host, port = _endpoint(url)
    outcome: list = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=probe, daemon=True, name="napari-deepseg-probe")
    thread.start()
    thread.join(timeout + 0.5)
    if not outcome:
        return NO_INTERNET
    return None if outcome[0] is None else NO_INTERNET


def torch_cache_dir() -> Path:
    """torchvision's checkpoint cache, honouring ``TORCH_HOME``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_file_name(url: str) -> str:
    """The file name torchvision stores a checkpoint under (last part of its URL).

    Examples
    --------
    >>> weights_file_name("https://download.pytorch.org/models/resnet50-11ad3fa6.pth")
    'resnet50-11ad3fa6.pth'
    """
    return url.rsplit("/", 1)[-1]


def search_dirs() -> list:
    """The folders a torchvision checkpoint is looked for in: the override folder (if set), the torch cache."""
    override = os.environ.get(ENV_WEIGHTS_DIR)
    return ([Path(override)] if override else []) + [torch_cache_dir()]


def find_local_weights(url: str) -> Optional[Path]:
    """Return a local copy of the checkpoint at ``url`` if one exists, else ``None``."""
    name = weights_file_name(url)
    for folder in search_dirs():
        if (folder / name).is_file():
            return folder / name
    return None


def checkpoint_kind(path) -> str:
    """``"checkpoint"`` when the file's first bytes could be one, else what it looks like (``"a text file"``).

    PyTorch writes a zip archive (``PK``) or, in the legacy format, a pickle
    (``0x80``); safetensors starts with an 8-byte header length then ``{``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".pth", delete=False) as f:
    ...     _ = f.write("hello")
    >>> checkpoint_kind(f.name)
    'a text file'
    """
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "empty"
    if head[:2] == b"PK" or head[:1] == b"\x80" or (len(head) > 8 and head[8:9] == b"{"):
        return "checkpoint"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "checkpoint"  # some other binary: let the reader say what is wrong
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return "a text file"
    return "checkpoint"


def load_state_dict_file(path) -> dict:
    """Read a state dict from ``.pth``/``.pt`` (``weights_only``) or ``.safetensors``.

    Raises
    ------
    WeightsUnavailableError
        If the file is missing or cannot be read as a state dict.
    """
    import torch

    p = Path(path).expanduser()
    if p.is_dir():
        raise WeightsUnavailableError(f"weights path {p} is a folder, not a file: choose the checkpoint file itself")
    if not p.is_file():
        raise WeightsUnavailableError(f"weights file not found: {p}")
    kind = checkpoint_kind(p)
    if kind != "checkpoint":
        raise WeightsUnavailableError(
            f"weights file {p} is {kind}, not a checkpoint: choose a PyTorch (.pth/.pt) or safetensors file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        first = " ".join(str(exc).split(". ")[0].split())[:160]  # torch's messages run to many sentences
        raise WeightsUnavailableError(
            f"cannot read weights file {p} (not a PyTorch or safetensors checkpoint?): {type(exc).__name__}: {first}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"weights file {p} does not hold a state dict")
    return state


def resolve_torchvision_weights(
    url: str, weights_path=None, allow_download: bool = True, progress: bool = True
) -> dict:
    """Return the state dict of a torchvision checkpoint, following the module's order.

    Parameters
    ----------
    url : str
        The checkpoint's URL, e.g. ``ResNet50_Weights.IMAGENET1K_V2.url``.
    weights_path : path-like, optional
        An explicit file; when given, nothing else is tried.
    allow_download : bool
        Download into torchvision's cache when no local copy exists.
    progress : bool
        Show a progress bar while downloading (on stderr, as is torch's
        ``Downloading:`` line: stdout stays for results).

    Raises
    ------
    WeightsUnavailableError
        Naming the missing file, the folders searched and why it could not be downloaded.
    """
    if weights_path is not None:
        return load_state_dict_file(weights_path)
    local = find_local_weights(url)
    if local is not None:
        return load_state_dict_file(local)

    def missing(cause):
        return WeightsUnavailableError(file=weights_file_name(url), url=url, searched=search_dirs(), cause=cause)

    if not allow_download:
        raise missing("downloads are off")
    cause = unreachable_cause(url)  # no network: one line now, before torch.hub says "Downloading"
    if cause:
        raise missing(cause)
    import torch.hub

    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch.hub writes "Downloading: ..." on stdout
            return torch.hub.load_state_dict_from_url(url, progress=progress, map_location="cpu",
                                                      weights_only=True)
    except Exception as exc:  # noqa: BLE001 - network errors vary; one clear line
        raise missing(network_cause(exc)) from None

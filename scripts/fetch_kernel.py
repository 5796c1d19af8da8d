"""Fetch and cache Debian kernels (vmlinux+DWARF, vmlinuz, System.map, config) for entrycheck."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DEFAULT_CACHE = Path("~/.cache/entrycheck").expanduser()
DEFAULT_FLAVOUR = "cloud-amd64"
KEYS = ("vmlinux", "vmlinux_nodebug", "vmlinuz", "system_map", "config")
IMAGE_FILES = {"vmlinuz": "vmlinuz", "system_map": "System.map", "config": "config"}
APT_OPTS = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Suites reached through an apt configuration of our own under the cache, never /etc/apt: a
# sid line there turns the next `apt-get install` into a partial upgrade of the machine.
PRIVATE_SUITES = ("trixie", "forky", "sid", "unstable", "testing")
LISTS_MAX_AGE = 24 * 3600


class FetchError(Exception):
    """A failure reported to the user as one line, exit code 2."""


def log(msg: str) -> None:
    """Write a progress message to stderr."""
    print(f"fetch_kernel: {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    """Run a command, return stdout; raise FetchError with its most useful stderr line."""
    if shutil.which(cmd[0]) is None:
        raise FetchError(f"{cmd[0]} not found (needs a Debian system with apt and binutils)")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "_apt" not in ln]
        errs = [ln for ln in lines if ln.startswith("E:")] or lines
        shown = " ".join([c for c in cmd if not c.startswith("-") and "::" not in c][:3])
        raise FetchError(f"{shown} failed: {errs[-1] if errs else f'exit {proc.returncode}'}")
    return proc.stdout


class Apt:
    """apt-get / apt-cache for one suite: the machine's sources, or for a suite in
    PRIVATE_SUITES a sources.list, lists and archives of its own under <cache>/apt/<suite>."""

    def __init__(self, suite: str | None = None, cache_dir: Path = DEFAULT_CACHE) -> None:
        self.suite = suite
        self.options = list(APT_OPTS)
        if suite in PRIVATE_SUITES:
            root = Path(cache_dir).expanduser() / "apt" / suite
            (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
            (root / "archives" / "partial").mkdir(parents=True, exist_ok=True)
            sources = root / "sources.list"
            sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n")
            self.options += [
                "-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-",
                "-o", f"Dir::State::lists={root / 'lists'}",
                "-o", f"Dir::Cache::archives={root / 'archives'}",
            ]  # fmt: skip
            stamp = root / "lists" / ".updated"
            if not stamp.is_file() or time.time() - stamp.stat().st_mtime > LISTS_MAX_AGE:
                log(f"apt-get update for {suite} (own configuration under {root})")
                _run(["apt-get", *self.options, "update"])
                stamp.touch()

    def spec(self, pkg: str, version: str | None = None) -> str:
        """apt package spec: pkg=version, pkg/suite (machine sources) or pkg."""
        if version:
            return f"{pkg}={version}"
        return f"{pkg}/{self.suite}" if self.suite and self.suite not in PRIVATE_SUITES else pkg

    def cache(self, *args: str) -> str:
        return _run(["apt-cache", *self.options, *args])

    def available(self, pkg: str) -> bool:
        """True if apt knows pkg (a name or an apt spec such as name=version)."""
        cmd = ["apt-cache", *self.options, "show", pkg]
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def download(self, spec: str, cwd: Path) -> None:
        _run(["apt-get", *self.options, "download", spec], cwd=cwd)


def resolve_abi(flavour: str = DEFAULT_FLAVOUR, version: str | None = None,
                suite: str | None = None, cache_dir: Path = DEFAULT_CACHE) -> str:  # fmt: skip
    """Resolve the ABI (e.g. 6.1.0-56-cloud-amd64) from meta-package linux-image-<flavour>-dbg."""
    meta = f"linux-image-{flavour}-dbg"
    apt = Apt(suite, cache_dir)
    out = apt.cache("depends", apt.spec(meta, version))
    for line in out.splitlines():
        dep = line.strip().removeprefix("|").strip()
        if dep.startswith("Depends: linux-image-") and dep.endswith("-dbg"):
            return dep.removeprefix("Depends: linux-image-").removesuffix("-dbg")
    where = f" version {version}" if version else f" in suite {suite}" if suite else ""
    raise FetchError(
        f"cannot resolve ABI: {meta}{where} not found or has no linux-image-*-dbg dependency"
    )


def _deb_ok(deb: Path) -> bool:
    """True if deb is a complete, readable .deb archive."""
    return subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True).returncode == 0


def _deb_field(deb: Path, field: str) -> str:
    """Read a control field from a .deb."""
    return _run(["dpkg-deb", "-f", str(deb), field]).strip()


def _get_deb(pkg: str, debs: Path, version: str | None, apt: Apt) -> Path:
    """Return a cached, complete .deb of pkg, downloading it with apt-get download if needed."""
    debs.mkdir(parents=True, exist_ok=True)
    pattern = f"{pkg}_{version.replace(':', '%3a')}_*.deb" if version else f"{pkg}_*.deb"
    for deb in sorted(debs.glob(pattern), reverse=True):
        if _deb_ok(deb):
            log(f"cache hit: {deb}")
            return deb
    log(f"downloading {apt.spec(pkg, version)} ...")
    with tempfile.TemporaryDirectory(dir=debs, prefix=".dl-") as tmp:
        apt.download(apt.spec(pkg, version), Path(tmp))
        got = [p for p in Path(tmp).glob("*.deb") if _deb_ok(p)]
        if not got:
            raise FetchError(f"apt-get download {pkg} produced no valid .deb")
        dest = debs / got[0].name
        os.replace(got[0], dest)
    return dest


def _image_packages(abi: str) -> list[tuple[str, dict[str, str]]]:
    """Packages that may hold the vmlinuz and config of `abi`, with the member paths: up to
    trixie linux-image-<abi>-unsigned (/boot); sid splits them into linux-binary-unsigned
    (the vmlinuz) and linux-base (config) under /usr/lib/modules/<abi>."""
    boot = {k: f"./boot/{name}-{abi}" for k, name in IMAGE_FILES.items() if k != "system_map"}
    mods = f"./usr/lib/modules/{abi}"
    return [
        (f"linux-image-{abi}-unsigned", boot),
        (f"linux-binary-unsigned-{abi}", {"vmlinuz": f"{mods}/vmlinuz.unsigned"}),
        (f"linux-base-{abi}", {"config": f"{mods}/config"}),
        (f"linux-image-{abi}", boot),
    ]


def _regular_members(deb: Path) -> set[str]:
    """Paths of the regular files in a .deb's data archive."""
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise FetchError(f"cannot list {deb.name}")
    return {line.split()[-1] for line in listing.stdout.splitlines() if line.startswith("-")}


def _is_stub(path: Path) -> bool:
    """True for Debian's placeholder System.map ("The real System.map is in ...-dbg")."""
    return path.stat().st_size < 4096 and b"real System.map" in path.read_bytes()


def _have(path: Path) -> bool:
    """True if path is cached and is not a placeholder."""
    return path.is_file() and not (path.name == "System.map" and _is_stub(path))


def _extract(deb: Path, members: dict[str, Path]) -> None:
    """Extract {tar member: dest} from deb in one streamed pass; temp dir + atomic renames."""
    kdir = next(iter(members.values())).parent
    with tempfile.TemporaryDirectory(dir=kdir, prefix=".extract-") as tmp:
        cmd = ["dpkg-deb", "--fsys-tarfile", str(deb)]
        dpkg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        tar = subprocess.run(["tar", "-x", "-C", tmp, *members], stdin=dpkg.stdout,
                             stderr=subprocess.PIPE)  # fmt: skip
        assert dpkg.stdout is not None
        dpkg.stdout.close()
        if dpkg.wait() != 0 or tar.returncode != 0:
            why = [ln for ln in tar.stderr.decode().splitlines() if "Exiting with" not in ln]
            raise FetchError(f"cannot extract from {deb.name}: {(why or ['dpkg-deb failed'])[0]}")
        for member, dest in members.items():
            src = Path(tmp, member)
            if dest.name == "System.map" and _is_stub(src):
                log(f"{deb.name} has only a System.map stub; the real one is in the -dbg deb")
                continue
            os.replace(src, dest)


def _strip_debug(src: Path, dest: Path) -> None:
    """objcopy --strip-debug src into dest (temp file + atomic rename)."""
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        _run(["objcopy", "--strip-debug", str(src), str(tmp)])
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    """sha256 hex digest of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    """Atomically write JSON."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def fetch(abi: str, what: Iterable[str] | str = ("dbg", "image"), cache_dir: Path = DEFAULT_CACHE,
          *, version: str | None = None, suite: str | None = None,
          drop_debs: bool = False) -> dict[str, Path]:  # fmt: skip
    """Fetch kernel `abi` into <cache_dir>/kernels/<abi>/; return {key: path} of the parts."""
    parts = {w.strip() for w in (what.split(",") if isinstance(what, str) else what) if w.strip()}
    if not parts or parts - {"dbg", "image"}:
        raise FetchError(f"--what must be a comma list of dbg,image (got {sorted(parts)})")
    cache_dir = Path(cache_dir).expanduser()
    kdir, debs = cache_dir / "kernels" / abi, cache_dir / "debs"
    kdir.mkdir(parents=True, exist_ok=True)
    mpath = kdir / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
    manifest.update(abi=abi, schema=1)
    pkgs, timings = manifest.setdefault("packages", {}), manifest.setdefault("timings", {})
    result: dict[str, Path] = {}
    apt = Apt(suite, cache_dir)

    def step(name: str, func: Callable[..., Any], *args: Any) -> Any:
        t0 = time.monotonic()
        out = func(*args)
        timings[name] = round(time.monotonic() - t0, 3)
        log(f"{name}: {timings[name]:.1f}s")
        return out

    if "dbg" in parts:
        vml, smap, nodebug = kdir / "vmlinux", kdir / "System.map", kdir / "vmlinux.nodebug"
        pkg = f"linux-image-{abi}-dbg"
        if not (_have(vml) and _have(smap)):
            deb = step("dbg_download", _get_deb, pkg, debs, version, apt)
            # bookworm and trixie keep the files in /usr/lib/debug/boot, sid under
            # /usr/lib/debug/lib/modules/<abi> (with symlinks from boot/)
            files = _regular_members(deb)
            want = {}
            for dest, names in ((vml, [f"boot/vmlinux-{abi}", f"lib/modules/{abi}/vmlinux"]),
                                (smap, [f"boot/System.map-{abi}",
                                        f"lib/modules/{abi}/System.map"])):
                member = next((f"./usr/lib/debug/{n}" for n in names
                               if f"./usr/lib/debug/{n}" in files), None)
                if member is None:
                    raise FetchError(f"{deb.name} holds no {dest.name} (looked for {names})")
                if not _have(dest):
                    want[member] = dest
            step("dbg_extract", _extract, deb, want)
        else:
            log(f"cache hit: {vml}, {smap.name}")
            hits = [d for d in sorted(debs.glob(f"{pkg}_*.deb"), reverse=True) if _deb_ok(d)]
            deb = hits[0] if hits else None
        if not nodebug.is_file() or nodebug.stat().st_mtime < vml.stat().st_ctime:
            step("dbg_strip", _strip_debug, vml, nodebug)
        else:
            log(f"cache hit: {nodebug}")
        if deb is not None:
            pkgs["dbg"] = {"name": pkg, "version": _deb_field(deb, "Version"), "deb": deb.name}
        st = vml.stat()
        if manifest.get("vmlinux_stat") != [st.st_size, st.st_mtime_ns]:
            manifest["vmlinux_sha256"] = step("dbg_sha256", _sha256, vml)
            manifest["vmlinux_stat"] = [st.st_size, st.st_mtime_ns]
        if drop_debs and deb is not None:
            deb.unlink()
            log(f"dropped {deb}")
        result.update(vmlinux=vml, vmlinux_nodebug=nodebug, system_map=smap)

    if "image" in parts:
        files = {k: kdir / v for k, v in IMAGE_FILES.items()}
        missing = {k: p for k, p in files.items() if not _have(p) and k != "system_map"}
        if not missing:
            log(f"cache hit: {', '.join(p.name for p in files.values() if _have(p))}")
        for pkg, members in _image_packages(abi):
            wanted = {k: members[k] for k in missing if k in members}
            if not wanted or not apt.available(apt.spec(pkg, version)):
                continue
            deb = step(f"download {pkg}", _get_deb, pkg, debs, version, apt)
            regular = _regular_members(deb)
            found = {m: missing.pop(k) for k, m in wanted.items() if m in regular}
            if found:
                step(f"extract {pkg}", _extract, deb, found)
                pkgs.setdefault("image", {"name": pkg, "version": _deb_field(deb, "Version"),
                                          "deb": deb.name})
            if drop_debs:
                deb.unlink()
                log(f"dropped {deb}")
        if missing:
            raise FetchError(f"no apt package of {abi} holds {', '.join(sorted(missing))}")
        result.update(files)

    result = {k: p for k, p in result.items() if _have(p)}
    known = {k: Path(v["path"]) for k, v in manifest.get("files", {}).items()} | result
    manifest["files"] = {
        k: {"path": str(p), "size": p.stat().st_size} for k, p in known.items() if _have(p)
    }
    _write_json(mpath, manifest)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--flavour", default=DEFAULT_FLAVOUR, help="e.g. cloud-amd64, 6.12-cloud-amd64")
    pin = ap.add_mutually_exclusive_group()
    pin.add_argument(
        "--abi", help="pin the ABI, e.g. 6.1.0-56-cloud-amd64 (default: $ENTRYCHECK_KERNEL_ABI)"
    )
    pin.add_argument("--version-pin", help="pin the Debian package version, e.g. 6.1.192-2")
    ap.add_argument(
        "--suite",
        help=f"apt suite; {', '.join(PRIVATE_SUITES)} use an apt configuration of their own "
        "under the cache, never /etc/apt",
    )
    ap.add_argument(
        "--what", default="dbg,image", help="comma list of dbg,image (default: %(default)s)"
    )
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="default: %(default)s")
    ap.add_argument(
        "--drop-debs", action="store_true", help="delete the .deb files after extraction"
    )
    ap.add_argument("--print", dest="key", choices=KEYS, help="print only this file's path")
    args = ap.parse_args(argv)
    try:
        abi = args.abi or (None if args.version_pin else os.environ.get("ENTRYCHECK_KERNEL_ABI"))
        if not abi:
            abi = resolve_abi(args.flavour, args.version_pin, args.suite, args.cache_dir)
        log(f"abi {abi}")
        paths = fetch(abi, args.what, args.cache_dir, version=args.version_pin,
                      suite=args.suite, drop_debs=args.drop_debs)  # fmt: skip
        if args.key and args.key not in paths:
            raise FetchError(f"{args.key} was not produced (--what {args.what})")
    except FetchError as exc:
        print(f"fetch_kernel: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"fetch_kernel: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    for key in [args.key] if args.key else [k for k in KEYS if k in paths]:
        print(paths[key] if args.key else f"{key}={paths[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

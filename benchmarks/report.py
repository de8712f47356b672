"""The results as JSON and as the Markdown table in benchmarks/README.md (between two markers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BEGIN = "<!-- results:begin (written by `python -m benchmarks run`; edits inside are overwritten) -->"
END = "<!-- results:end -->"


def write_json(doc: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    date = doc["meta"]["date"][:10]
    path = out_dir / f"{date}.json"
    i = 2
    while path.exists():
        path = out_dir / f"{date}-{i}.json"
        i += 1
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


def _s(x: Any, unit: str = "s", digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        x = round(x, digits)
    return f"{x} {unit}".strip()


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.0f} ms"


def _ok(flag: bool | None) -> str:
    return "—" if flag is None else ("met" if flag else "**missed**")


def _stretch(t: dict[str, Any], goal: str, stretch: str) -> str:
    return _ok(t[goal]) + (" (stretch met)" if t[stretch] else "")


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def targets(doc: dict[str, Any]) -> dict[str, Any]:
    sc = doc["scenarios"]
    out: dict[str, Any] = {}
    r = _get(sc, "dispatch", "ratio_p50")
    out["dispatch_p50_at_most_half_of_job"] = None if r is None else r <= 0.5
    r = _get(sc, "throughput", "ratio_jobs_per_s")
    out["throughput_ratio_at_least_1"] = None if r is None else r >= 1.0
    out["throughput_ratio_at_least_2_stretch"] = None if r is None else r >= 2.0
    # Issue 15: against the Job controller with its client limits raised.
    r = _get(sc, "dispatch", "ratio_raised_p50")
    out["dispatch_p50_at_most_raised_job"] = None if r is None else r <= 1.0
    out["dispatch_p50_at_most_half_of_raised_job_stretch"] = None if r is None else r <= 0.5
    r = _get(sc, "throughput", "ratio_raised_jobs_per_s")
    out["throughput_at_least_1_2_of_raised_job"] = None if r is None else r >= 1.2
    r = _get(sc, "throughput", "ratio_raised_pod_latency_p50")
    out["pod_latency_under_load_at_most_raised_job"] = None if r is None else r <= 1.0
    r = _get(sc, "throughput", "ratio_raised_controller_cpu")
    out["controller_cpu_at_most_1_5_of_raised_job"] = None if r is None else r <= 1.5
    jl, job = _get(sc, "cron", "jobline", "lateness_s", "p99"), _get(sc, "cron", "job", "lateness_s", "p99")
    out["cron_p99_under_1s"] = None if jl is None else jl < 1.0
    out["cron_p99_below_cronjob"] = None if jl is None or job is None else jl < job
    rss = _get(sc, "scale", "rss_mb_hwm")
    out["rss_under_300mb"] = None if rss is None else rss < 300
    out["rss_measured_at_n"] = _get(sc, "scale", "n")
    return out


PEER_LABEL = {"job": "Job", "job-raised": "Job, limits raised"}


def _peers(scenario: dict[str, Any]) -> list[str]:
    return [p for p in ("job", "job-raised") if p in scenario]


def _sfx(peer: str) -> str:
    return "_raised" if peer == "job-raised" else ""


def markdown(doc: dict[str, Any]) -> str:
    meta, sc = doc["meta"], doc["scenarios"]
    m, v = meta["machine"], meta["versions"]
    cm = v.get("controller_manager_defaults") or {}
    t = doc.get("targets") or targets(doc)
    lines = [
        f"### Run of {meta['date']} ({meta['mode']})",
        "",
        f"- Command: `{meta['command']}`; took {meta['duration_s'] / 60:.1f} min "
        f"(cluster start {meta.get('cluster_start_s', 0):.0f} s).",
        f"- Machine: {m['cores']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}. Load average (1/5/15 min) before {meta['loadavg_before']}, after "
        f"{meta['loadavg_after']} — other developers' test clusters share this machine.",
        f"- Versions: Kubernetes {v.get('kubernetes_version')}, etcd {v.get('etcd_version')}, kwok "
        f"{v.get('kwok_version')}, kopf {v.get('py_kopf')}, jobline {v.get('py_jobline')} (commit "
        f'{v.get("git_commit")}); {meta["kwok_nodes"]} kwok nodes, pods "complete" at once.',
        "- Peers: kube-controller-manager with its defaults: "
        + ", ".join(f"`--{k}={val}`" for k, val in cm.items())
        + (
            '; and ("limits raised") restarted with '
            + " ".join(f"`{flag}`" for flag in meta.get("raised_limits") or [])
            if meta.get("peer_limits", "default") != "default"
            else ""
        )
        + ". Jobline: `jobline-operator` with the admission webhook off (the peers have none), watching the "
        "scenario's namespace.",
        "",
        "| # | scenario | metric | Jobline | peer | Jobline / peer | target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    d = sc.get("dispatch") or {}
    if "error" in d:
        lines.append(f"| 1 | dispatch latency | error | {d['error'][:80]} | | | | |")
    elif d:
        jl = d["jobline"]["latency_s"]
        for i, peer in enumerate(_peers(d)):
            job, sfx = d[peer]["latency_s"], _sfx(peer)
            goal, met = (
                ("p50 ≤ 0.5", _ok(t["dispatch_p50_at_most_half_of_job"]))
                if peer == "job"
                else (
                    "p50 ≤ 1.0 (0.5)",
                    _stretch(
                        t,
                        "dispatch_p50_at_most_raised_job",
                        "dispatch_p50_at_most_half_of_raised_job_stretch",
                    ),
                )
            )
            head = (
                f"1 | dispatch latency, n={d['n']} one at a time | created → pod, p50 / p99"
                if i == 0
                else "1 | | "
            )
            lines.append(
                f"| {head} | {_ms(jl['p50'])} / {_ms(jl['p99'])} | {PEER_LABEL[peer]}: {_ms(job['p50'])} / "
                f"{_ms(job['p99'])} | {d.get(f'ratio{sfx}_p50')} / {d.get(f'ratio{sfx}_p99')} | {goal} | {met} |"
            )
    tp = sc.get("throughput") or {}
    if "error" in tp:
        lines.append(f"| 2 | throughput | error | {tp['error'][:80]} | | | | |")
    elif tp:
        jl, dr = tp["jobline"], tp["jobline_drain"]
        peers = _peers(tp)
        for i, peer in enumerate(peers):
            job, sfx = tp[peer], _sfx(peer)
            goal, met = (
                (
                    "≥ 1.0 (2.0)",
                    _stretch(t, "throughput_ratio_at_least_1", "throughput_ratio_at_least_2_stretch"),
                )
                if peer == "job"
                else ("≥ 1.2", _ok(t["throughput_at_least_1_2_of_raised_job"]))
            )
            head = f"2 | throughput, N={tp['n']} at once | all finished in (jobs/s)" if i == 0 else "2 | | "
            lines.append(
                f"| {head} | {_s(jl['seconds_to_all_finished'], 's', 1)} ({jl['jobs_per_s']}/s) | "
                f"{PEER_LABEL[peer]}: {_s(job['seconds_to_all_finished'], 's', 1)} ({job['jobs_per_s']}/s) | "
                f"{tp.get(f'ratio{sfx}_jobs_per_s')} (jobs/s) | {goal} | {met} |"
            )
        for peer in peers:
            job, sfx = tp[peer], _sfx(peer)
            goal, met = ("≤ 1.0", _ok(t["pod_latency_under_load_at_most_raised_job"])) if sfx else ("", "")
            lines.append(
                f"| 2 | | created → pod under load, p50 / p99 | {_ms(jl['pod_latency_s']['p50'])} / "
                f"{_ms(jl['pod_latency_s']['p99'])} | {PEER_LABEL[peer]}: {_ms(job['pod_latency_s']['p50'])} / "
                f"{_ms(job['pod_latency_s']['p99'])} | {tp.get(f'ratio{sfx}_pod_latency_p50')} (p50) | {goal} | {met} |"
            )
        for peer in peers:
            job, sfx = tp[peer], _sfx(peer)
            goal, met = ("≤ 1.5", _ok(t["controller_cpu_at_most_1_5_of_raised_job"])) if sfx else ("", "")
            lines.append(
                f"| 2 | | controller CPU per job (operator / kube-controller-manager) | "
                f"{jl.get('controller_cpu_ms_per_job')} ms | {PEER_LABEL[peer]}: {job.get('controller_cpu_ms_per_job')} ms "
                f"| {tp.get(f'ratio{sfx}_controller_cpu')} | {goal} | {met} |"
            )
        lines.append(
            f"| 2 | | API writes per job: all (by the controller) | {jl['writes_per_job']} "
            f"({jl['controller_writes_per_job']}) | "
            + "; ".join(
                f"{PEER_LABEL[p]}: {tp[p]['writes_per_job']} ({tp[p]['controller_writes_per_job']})"
                for p in peers
            )
            + " | | | |"
        )
        lines.append(
            f"| 2 | drain, N={dr['n']}, `concurrency: {dr['concurrency']}` | jobs/s | {dr['jobs_per_s']}/s "
            f"({_s(dr['seconds_to_all_finished'], 's', 1)}) | no peer knob | | | |"
        )
    cr = sc.get("cron") or {}
    if "error" in cr:
        lines.append(f"| 3 | cron lateness | error | {cr['error'][:80]} | | | | |")
    elif cr:
        jl, job = cr["jobline"], cr["job"]

        def lat(x: dict[str, Any]) -> str:
            s = x["lateness_s"]
            return f"{_s(s['p50'])} / {_s(s['p99'])} / {_s(s['max'])}" + (
                f", {x['missed']} missed" if x["missed"] else ""
            )

        lines.append(
            f"| 3 | cron lateness, M={cr['m']} x {cr['fires']} run(s), `{cr['schedule']}` | instant → job, "
            f"p50 / p99 / max | {lat(jl)} | CronJob: {lat(job)} | {cr['ratio_p50']} / {cr['ratio_p99']} | "
            f"p99 < 1 s, < CronJob | {_ok(t['cron_p99_under_1s'])}, {_ok(t['cron_p99_below_cronjob'])} |"
        )
    s4 = sc.get("scale") or {}
    if "error" in s4 and "rss_mb_hwm" not in s4:
        lines.append(f"| 4 | scale | error | {s4['error'][:80]} | | | | |")
    elif s4:
        at_n = "" if s4["n"] >= 10_000 else f" (at N={s4['n']})"
        lines.append(
            f"| 4 | scale, N={s4['n']} pending in one queue | operator RSS at sync / peak | "
            f"{_s(s4.get('rss_mb_at_sync'), 'MB', 0)} / {_s(s4.get('rss_mb_hwm'), 'MB', 0)} | — | | < 300 MB at 10k "
            f"| {_ok(t['rss_under_300mb'])}{at_n} |"
        )
        lines.append(
            f"| 4 | | operator start → synced / → first dispatch | {_s(s4.get('seconds_start_to_synced'), 's', 1)} / "
            f"{_s(s4.get('seconds_start_to_first_dispatch'), 's', 1)} | — | | | |"
        )
        lines.append(
            f"| 4 | | first batch → refill of the queue (`concurrency: {s4['queue_concurrency']}`) | "
            f"{_s(s4.get('seconds_first_dispatch_to_refill'), 's', 1)} | — | | | |"
        )
        lines.append(
            f"| 4 | | dispatch rate once draining | {s4.get('dispatch_per_s')}/s over {s4.get('window_s')} s | — | | | |"
        )
        lines.append(
            f"| 4 | | `kubectl get qj` (fresh / after the operator) | {', '.join(map(str, s4['kubectl_get_qj_s_before']))} s / "
            f"{', '.join(map(str, s4.get('kubectl_get_qj_s_after') or []))} s | — | | | |"
        )
    c5 = sc.get("ceiling") or {}
    if "error" in c5:
        lines.append(f"| 5 | ceiling | error | {c5['error'][:80]} | | | | |")
    elif c5:
        lines.append(
            f"| 5 | ceiling: trivial CR, n={c5['n']} ({c5['client']}) | creates/s, status patches/s | "
            f"{c5['create']['per_s']}/s, {c5['status_patch']['per_s']}/s | | | | |"
        )
        pj = c5.get("per_job")
        if pj:
            lines.append(
                f"| 5 | | jobs/s the ceiling allows at the writes per job measured in 2 (throughput ÷ that) | "
                f"{pj['jobline']['ceiling_jobs_per_s']}/s ({pj['jobline']['fraction_of_ceiling']}) | "
                + "; ".join(
                    f"{PEER_LABEL[p]}: {pj[p]['ceiling_jobs_per_s']}/s ({pj[p]['fraction_of_ceiling']})"
                    for p in ("job", "job-raised")
                    if p in pj
                )
                + " | | | |"
            )
    lines.append("")
    for tag, where in (("throughput", ("throughput", "jobline", "profile")), ("scale", ("scale", "profile"))):
        prof = _get(sc, *where)
        if not prof:
            continue
        if "error" in prof:
            lines.append(f"Profile ({tag}): {prof['error']}")
            continue
        buckets = ", ".join(f"{b['where']} {b['pct']} %" for b in prof["buckets"][:6])
        top = ", ".join(f"`{b['where']}` {b['pct']} %" for b in prof["top_self"][:6])
        lines.append(
            f"Profile of the operator during {tag} (py-spy, {prof['samples']} samples on CPU): {buckets}. "
            f"Top self time: {top}."
        )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_readme(doc: dict[str, Any], readme: Path) -> None:
    block = f"{BEGIN}\n{markdown(doc)}{END}"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n\n## Results\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)

#!/usr/bin/env node
// bench/report.js: the table (or JSON) of bench/run: reads the per-run results bench/run left in
// a folder (NAME.tTHREADS.rROUND.{aim,ort}.json, or .err when a run failed, baseline.N.json) and
// prints, per model and thread count, the median over rounds of each figure.
//
//   node bench/report.js DIR [--models "a b c"] [--rounds N] [--aim PATH] [--json] [--quick]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const {execFileSync} = require('child_process');

const argv = process.argv.slice(2);
const dir = argv[0];
const opt = {models: [], rounds: null, aim: null, json: false, quick: false};
for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--models') opt.models = argv[++i].split(/\s+/).filter(Boolean);
    else if (k === '--rounds') opt.rounds = Number(argv[++i]);
    else if (k === '--aim') opt.aim = argv[++i];
    else if (k === '--json') opt.json = true;
    else if (k === '--quick') opt.quick = true;
    else {
        process.stderr.write(`report: unknown argument '${k}'\n`);
        process.exit(2);
    }
}

const median = (xs) => {
    const v = xs.filter((x) => typeof x === 'number' && isFinite(x)).sort((a, b) => a - b);
    if (!v.length) return null;
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

// ---- Collect ----
const runs = new Map(); // "name|threads" -> {aim: [results], ort: [...], aimErr, ortErr}
const baselines = [];
for (const f of fs.readdirSync(dir).sort()) {
    const full = path.join(dir, f);
    if (/^baseline\.\d+\.json$/.test(f)) {
        baselines.push(JSON.parse(fs.readFileSync(full, 'utf8')));
        continue;
    }
    const m = /^(.+)\.t(\d+)\.r(\d+)\.(aim|ort)\.(json|err)$/.exec(f);
    if (!m) continue;
    const key = `${m[1]}|${m[2]}`;
    if (!runs.has(key)) runs.set(key, {name: m[1], threads: Number(m[2]), aim: [], ort: []});
    const e = runs.get(key);
    if (m[5] === 'err') e[`${m[4]}Err`] = fs.readFileSync(full, 'utf8').trim();
    else e[m[4]].push(JSON.parse(fs.readFileSync(full, 'utf8')));
}
const baseline = median(baselines.map((b) => b.peak_rss_bytes));

function summarize(list, side) {
    if (!list.length) return null;
    const pick = (f) => median(list.map(f));
    const s = {
        rounds: list.length,
        iterations: list[0].iterations,
        warmup: list[0].warmup,
        p50_ms: pick((r) => r.latency_ms.p50),
        p90_ms: pick((r) => r.latency_ms.p90),
        p99_ms: pick((r) => r.latency_ms.p99),
        mean_ms: pick((r) => r.latency_ms.mean),
        min_ms: pick((r) => r.latency_ms.min),
        throughput_per_s: pick((r) => r.throughput_per_s),
        load_ms: pick((r) => r.load_ms),
        peak_rss_bytes: pick((r) => r.peak_rss_bytes),
        p50_ms_rounds: list.map((r) => r.latency_ms.p50),
    };
    if (side === 'aim') {
        s.arena_bytes = pick((r) => r.arena_bytes);
        s.net_rss_bytes = pick((r) => r.peak_rss_bytes - r.rss_before_load_bytes);
    } else if (baseline !== null) {
        s.net_rss_bytes = pick((r) => r.peak_rss_bytes - baseline);
    }
    return s;
}

const order = (a, b) => {
    const ia = opt.models.indexOf(a.name), ib = opt.models.indexOf(b.name);
    return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.name.localeCompare(b.name) ||
           a.threads - b.threads;
};
const rows = [...runs.values()].sort(order).map((e) => {
    const aim = summarize(e.aim, 'aim'), ort = summarize(e.ort, 'ort');
    return {
        model: e.name,
        threads: e.threads,
        aim,
        ort,
        aim_error: e.aimErr || null,
        ort_error: e.ortErr || null,
        ratio_p50: aim && ort && ort.p50_ms > 0 ? aim.p50_ms / ort.p50_ms : null,
    };
});

let aimVersion = null;
try {
    aimVersion = execFileSync(opt.aim, ['--version'], {encoding: 'utf8'}).trim();
} catch (e) { /* reported as null */ }
let commit = null;
try {
    commit = execFileSync('git', ['-C', __dirname, 'rev-parse', '--short', 'HEAD'],
                          {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim();
} catch (e) { /* not a checkout */ }
const machine = {
    cpu: os.cpus()[0] ? os.cpus()[0].model : 'unknown',
    cores: os.cpus().length,
    memory_bytes: os.totalmem(),
    load_average: os.loadavg(),
};
const doc = {
    date: new Date().toISOString(),
    machine,
    aim: {binary: opt.aim, version: aimVersion, commit},
    peer: baselines.length ? baselines[0].runtime : 'onnxruntime-node',
    rounds: opt.rounds,
    quick: opt.quick,
    statistic: 'median over rounds of each figure; latencies are per aim_session_run / session.run',
    ort_baseline_rss_bytes: baseline,
    memory_note: 'peak RSS is the whole process (getrusage maxrss). ORT net = ORT peak minus the ' +
                 'peak RSS of a node process that loaded onnxruntime-node and created no session; ' +
                 'aim net = aim peak minus the RSS of the aim process before it loaded the model.',
    rows,
};

if (opt.json) {
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    process.exit(0);
}

// ---- Table ----
const mb = (b) => (b === null || b === undefined ? '-' : (b / 1048576).toFixed(1));
const ms = (x) => (x === null || x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const head = ['model', 'thr', 'aim p50', 'ORT p50', 'aim/ORT', 'aim p90', 'ORT p90', 'aim load',
              'ORT load', 'aim peak', 'ORT peak', 'aim net', 'ORT net', 'iters'];
const lines = [head];
const notes = [];
for (const r of rows) {
    const a = r.aim || {}, o = r.ort || {};
    lines.push([r.model, String(r.threads),
                r.aim_error ? 'error' : ms(a.p50_ms), r.ort_error ? 'error' : ms(o.p50_ms),
                r.ratio_p50 === null ? '-' : r.ratio_p50.toFixed(2) + 'x',
                ms(a.p90_ms), ms(o.p90_ms), ms(a.load_ms), ms(o.load_ms),
                mb(a.peak_rss_bytes), mb(o.peak_rss_bytes), mb(a.net_rss_bytes), mb(o.net_rss_bytes),
                String((r.aim || r.ort || {}).iterations || '-')]);
    if (r.aim_error) notes.push(`${r.model} threads=${r.threads}: aim: ${r.aim_error}`);
    if (r.ort_error) notes.push(`${r.model} threads=${r.threads}: ORT: ${r.ort_error}`);
}
const widths = head.map((_, c) => Math.max(...lines.map((l) => l[c].length)));
const fmt = (l) => l.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
const out = [];
out.push(`${aimVersion || 'aim ?'}${commit ? ` (${commit})` : ''} vs ${doc.peer}; ${machine.cpu}, ` +
         `${machine.cores} cores; load average ${machine.load_average.map((x) => x.toFixed(2)).join(' ')}`);
out.push(`median over ${opt.rounds} round(s) of alternating runs${opt.quick ? ' (--quick: few iterations, noisy)' : ''}; ` +
         'times in ms, memory in MB');
out.push('');
out.push(fmt(lines[0]));
out.push(widths.map((w) => '-'.repeat(w)).join('  '));
for (const l of lines.slice(1)) out.push(fmt(l));
out.push('');
out.push(`peak = whole-process peak RSS. ORT net = ORT peak - ${mb(baseline)} MB (a node process with ` +
         'onnxruntime-node loaded, no session); aim net = aim peak - aim RSS before loading the model.');
out.push('load = model file parse + session creation (aim), InferenceSession.create (ORT).');
for (const n of notes) out.push(n);
process.stdout.write(out.join('\n') + '\n');

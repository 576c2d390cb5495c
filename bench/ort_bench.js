#!/usr/bin/env node
// bench/ort_bench.js: the ONNX Runtime side of bench/run: times one model with onnxruntime-node
// (installed into bench/node_modules by bench/setup-peer) the same way `aim bench` times aim:
// session load, WARMUP untimed runs, ITERATIONS timed runs one after the other, latency
// percentiles (linear interpolation, as aim bench), peak RSS. Prints one JSON object.
//
//   node bench/ort_bench.js --model M.onnx --threads N --iterations N --warmup N
//                           [--input NAME=FILE.pb]...
//   node bench/ort_bench.js --baseline
//
// Inputs are serialized ONNX TensorProto files (written by bench/make_models.py --inputs, or the
// test data of a model), the same files `aim bench --input` reads. --baseline loads
// onnxruntime-node, creates no session and reports the RSS of that process: peak minus baseline
// is ONNX Runtime's own memory for the model.
'use strict';

const fs = require('fs');
const path = require('path');

function fail(msg) {
    process.stderr.write(`ort_bench: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const a = {threads: 1, iterations: 50, warmup: 5, inputs: [], baseline: false, model: null};
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) fail(`${k} needs a value`);
            return argv[++i];
        };
        const count = () => {
            const v = value();
            if (!/^\d+$/.test(v)) fail(`${k} wants a whole number, got '${v}'`);
            return Number(v);
        };
        if (k === '--model') a.model = value();
        else if (k === '--threads') a.threads = count();
        else if (k === '--iterations') a.iterations = count();
        else if (k === '--warmup') a.warmup = count();
        else if (k === '--baseline') a.baseline = true;
        else if (k === '--input') {
            const v = value();
            const eq = v.indexOf('=');
            if (eq <= 0) fail(`--input wants NAME=FILE.pb, got '${v}'`);
            a.inputs.push([v.slice(0, eq), v.slice(eq + 1)]);
        } else fail(`unknown argument '${k}'`);
    }
    if (!a.baseline && !a.model) fail('needs --model or --baseline');
    if (a.iterations < 1) fail('--iterations must be at least 1');
    return a;
}

// ---- A minimal TensorProto reader (dims, data_type, name, raw_data and the typed fields) ----

function readVarint(buf, pos) {
    let v = 0n, shift = 0n;
    for (;;) {
        if (pos >= buf.length) throw new Error('truncated varint');
        const b = buf[pos++];
        v |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) return [v, pos];
        shift += 7n;
    }
}

// ONNX data_type -> [onnxruntime type name, typed array, field number of the typed data]
const TYPES = {
    1: ['float32', Float32Array, 4], 2: ['uint8', Uint8Array, 5], 3: ['int8', Int8Array, 5],
    4: ['uint16', Uint16Array, 5], 5: ['int16', Int16Array, 5], 6: ['int32', Int32Array, 5],
    7: ['int64', BigInt64Array, 7], 9: ['bool', Uint8Array, 5], 10: ['float16', Uint16Array, 5],
    11: ['float64', Float64Array, 10], 12: ['uint32', Uint32Array, 11],
    13: ['uint64', BigUint64Array, 11],
};

function readTensorProto(file) {
    const buf = fs.readFileSync(file);
    const t = {dims: [], dataType: 0, name: '', raw: null, values: []};
    let pos = 0;
    while (pos < buf.length) {
        let key;
        [key, pos] = readVarint(buf, pos);
        const field = Number(key >> 3n), wire = Number(key & 7n);
        if (wire === 0) {
            let v;
            [v, pos] = readVarint(buf, pos);
            if (field === 1) t.dims.push(Number(v));
            else if (field === 2) t.dataType = Number(v);
            else t.values.push([field, v]);
        } else if (wire === 2) {
            let len;
            [len, pos] = readVarint(buf, pos);
            const body = buf.subarray(pos, pos + Number(len));
            pos += Number(len);
            if (field === 1) { // packed dims
                for (let p = 0; p < body.length;) {
                    let v;
                    [v, p] = readVarint(body, p);
                    t.dims.push(Number(v));
                }
            } else if (field === 8) t.name = body.toString('utf8');
            else if (field === 9) t.raw = body;
            else t.values.push([field, body]); // packed typed data (or a field we ignore)
        } else if (wire === 5) pos += 4;
        else if (wire === 1) pos += 8;
        else throw new Error(`${file}: unsupported protobuf wire type ${wire}`);
    }
    const type = TYPES[t.dataType];
    if (!type) throw new Error(`${file}: unsupported data_type ${t.dataType}`);
    const [ortType, Arr, typedField] = type;
    const count = t.dims.reduce((x, y) => x * y, 1);
    let data;
    if (t.raw) {
        const copy = Buffer.from(t.raw); // aligned copy
        data = new Arr(copy.buffer, copy.byteOffset, count);
    } else {
        data = new Arr(count);
        let k = 0;
        for (const [field, v] of t.values) {
            if (field !== typedField) continue;
            if (typeof v === 'bigint') { data[k++] = Arr === BigInt64Array || Arr === BigUint64Array ? v : Number(v); continue; }
            if (typedField === 4) for (let p = 0; p + 4 <= v.length; p += 4) data[k++] = v.readFloatLE(p);
            else if (typedField === 10) for (let p = 0; p + 8 <= v.length; p += 8) data[k++] = v.readDoubleLE(p);
            else for (let p = 0; p < v.length;) {
                let x;
                [x, p] = readVarint(v, p);
                data[k++] = Arr === BigInt64Array ? BigInt.asIntN(64, x) : Arr === BigUint64Array ? x : Number(BigInt.asIntN(32, x));
            }
        }
        if (k !== count) throw new Error(`${file}: ${k} values for ${count} elements`);
    }
    if (ortType === 'bool') data = Uint8Array.from(data, (x) => (x ? 1 : 0));
    return {name: t.name, ortType, data, dims: t.dims};
}

// ---- Timing ----------------------------------------------------------------------------------

function percentile(sorted, p) { // linear interpolation between closest ranks (as aim bench)
    const pos = (p / 100) * (sorted.length - 1);
    const lo = Math.floor(pos), hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
    const a = parseArgs(process.argv.slice(2));
    const rssBefore = process.memoryUsage().rss;
    let ort;
    try {
        ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
    } catch (e) {
        fail(`cannot load onnxruntime-node (run bench/setup-peer): ${e.message}`);
    }
    if (a.baseline) {
        // Touch the native binding the way a session would, without creating one.
        ort.env.logLevel = 'error';
        const out = {
            runtime: `onnxruntime-node ${ort.env.versions.node}`,
            baseline: true,
            rss_bytes: process.memoryUsage().rss,
            peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
            rss_before_ort_bytes: rssBefore,
            note: 'RSS of a node process that loaded onnxruntime-node and created no session',
        };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
    }
    const feeds = {};
    const inputInfo = [];
    for (const [name, file] of a.inputs) {
        let t;
        try {
            t = readTensorProto(file);
        } catch (e) {
            fail(`input '${name}': ${e.message}`);
        }
        feeds[name] = new ort.Tensor(t.ortType, t.data, t.dims);
        inputInfo.push({name, type: t.ortType, shape: t.dims, source: file});
    }
    const options = {
        intraOpNumThreads: a.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
    };
    const t0 = nowMs();
    let session;
    try {
        session = await ort.InferenceSession.create(a.model, options);
    } catch (e) {
        fail(`${a.model}: ${e.message}`);
    }
    const loadMs = nowMs() - t0;
    for (const name of session.inputNames)
        if (!(name in feeds)) fail(`input '${name}' not given (use --input ${name}=FILE.pb)`);

    const lat = new Array(a.iterations);
    for (let it = 0; it < a.warmup + a.iterations; it++) {
        if (it === a.warmup) var loopStart = nowMs();
        const b = nowMs();
        await session.run(feeds);
        const e = nowMs();
        if (it >= a.warmup) lat[it - a.warmup] = e - b;
    }
    const totalMs = nowMs() - loopStart;
    const mean = lat.reduce((x, y) => x + y, 0) / lat.length;
    lat.sort((x, y) => x - y);
    const out = {
        runtime: `onnxruntime-node ${ort.env.versions.node}`,
        model: a.model,
        threads: a.threads,
        iterations: a.iterations,
        warmup: a.warmup,
        inputs: inputInfo,
        load_ms: loadMs,
        latency_ms: {
            p50: percentile(lat, 50), p90: percentile(lat, 90), p99: percentile(lat, 99),
            mean, min: lat[0], max: lat[lat.length - 1],
        },
        throughput_per_s: (a.iterations * 1000) / totalMs,
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
        rss_before_ort_bytes: rssBefore,
        note: 'peak_rss_bytes is the whole node process; subtract a --baseline run for ORT\'s own memory',
    };
    await session.release();
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((e) => fail(e.stack || String(e)));

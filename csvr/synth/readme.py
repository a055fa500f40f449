"""The README.md written into every generated dataset folder."""

from __future__ import annotations

from csvr.synth.catalogue import CLASSES
from csvr.synth.encode import CRF, PRESET
from csvr.synth.motions import GESTURES, RUN_TEMPO, WALK_TEMPO
from csvr.synth.scenes import GENERIC_SCENES
from csvr.synth.skeleton import OPENPOSE_COCO18


def dataset_readme(m: dict) -> str:
    p = m["params"]
    w, h = p["size"]
    vids = m["videos"]
    n_train = sum(v["split"] == "train" for v in vids)
    n_test = len(vids) - n_train
    iframe_counts = sorted(len(v["iframes"]) for v in vids)
    keyints = sorted(v["keyint"] for v in vids)
    n_events = sum(len(v["events"]) for v in vids)
    groups = m["groups"]
    all_classes = sorted(p["classes"]) == sorted(c.name for c in CLASSES)
    cls_arg = "" if all_classes else f" --classes {','.join(p['classes'])}"
    gop = p.get("gop")  # absent: the default per-video GOP policy
    gop_arg = "" if gop is None else f" --gop {gop}"
    lines = [
        "# csvr synthetic human-action videos (UCF101 layout)",
        "",
        "Procedurally generated videos of an articulated human figure, made by",
        "",
        "```",
        f"csvr data synth --out DIR{cls_arg} --videos-per-class {p['videos_per_class']} "
        f"--seconds {p['seconds']:g} --size {w}x{h} --seed {p['seed']}{gop_arg}",
        "```",
        "",
        f"{len(m['classes'])} classes x {p['videos_per_class']} videos = {len(vids)} videos of "
        f"{p['seconds']:g} s ({vids[0]['frames'] if vids else 0} frames) at {w}x{h}, {p['fps']} fps, H.264. "
        f"Split 1: {n_train} training and {n_test} test videos. Running the same command again with the same "
        "seed gives byte-identical pose files and identical decoded frames.",
        "",
        "## Layout",
        "",
        "```",
        "classInd.txt          '1 ClassName' per line, 1-based, alphabetical (as UCF101)",
        "trainlist01.txt       'ClassName/v_ClassName_gXX_cYY.mp4 label' (label 1-based)",
        "testlist01.txt        'ClassName/v_ClassName_gXX_cYY.mp4'",
        "ClassName/v_ClassName_gXX_cYY.mp4",
        "poses/openpose/ClassName/v_ClassName_gXX_cYY_<frame:012d>_keypoints.json",
        "synth.json            parameters, classes, and one record per video (see below)",
        "```",
        "",
        "## Groups and the split",
        "",
        "As in UCF101, a group `gXX` is one actor in one set of places: the group fixes the actor's body "
        "proportions, height, skin, hair and clothes, the group's generic scene (one of "
        f"{', '.join(GENERIC_SCENES)}) and the look of every scene kind (its colours and furniture), for all "
        "classes. Clips `cYY` of a group differ in everything else (see below). The split is by group, as "
        "UCF101's split 1 (groups 1-7 of 25 are its test set): "
        f"test groups {_span(groups['test'])}, training groups {_span(groups['train'])}. No group is in both "
        "lists, so test videos show actors and scenes never seen in training.",
        "",
        "## Classes",
        "",
        "The classes come in three groups that mirror Fig. 4 of the CSVR paper (motion-related, "
        "context-related, and classes that need both).",
        "",
    ]
    by_group: dict[str, list[dict]] = {}
    for c in m["classes"]:
        by_group.setdefault(c["group"], []).append(c)
    titles = {
        "motion": "Motion classes: only movement tells them apart",
        "context": "Context classes: only the scene or a held object tells them apart",
        "both": "Classes that need both movement and context",
    }
    explain = {
        "motion": (
            "All use the same scene distribution (the group's generic scene) and no object. All are "
            "made from one shared gait cycle whose joint-angle amplitudes, arm swing, elbow bend, lean and "
            "noise are drawn from the same ranges in every class, so single frames show the same set of "
            "poses; the classes differ in the cycle's tempo (walk "
            f"{WALK_TEMPO[0]}-{WALK_TEMPO[1]} Hz, run {RUN_TEMPO[0]}-{RUN_TEMPO[1]} Hz), in whether the "
            "leg cycle runs forwards or backwards in time, and in the travel relative to the facing "
            "direction. A pose sequence or a clip tells them apart; one frame does not. When the figure "
            "travels, the camera pans after it (following up to about 90 % of the travel), so the figure "
            "drifts across only part of the frame."
        ),
        "context": (
            "All use the same idle motion: standing with weight shifts and head turns, plus a random "
            "sequence of everyday gestures and short exercises ("
            + ", ".join(g.replace("_", " ") for g in GESTURES)
            + "), drawn from the same distribution in every class. The class is the scene (kitchen, beach, "
            "gym; these scenes never appear as a generic scene) or the object in the right hand (racket or bat, "
            "in the group's generic scene). Poses carry no information about these classes."
        ),
        "both": (
            "A 2 x 2 grid {walk, run} x {beach, gym}: each motion also occurs in another class (and in the "
            "motion group), each scene also occurs in another class (and in the context group); only the "
            "combination names the class."
        ),
    }
    for g in ("motion", "context", "both"):
        cs = by_group.get(g)
        if not cs:
            continue
        lines += [f"### {titles[g]}", "", explain[g], "", "| label | class | motion | scene | object | description |",
                  "|---|---|---|---|---|---|"]
        for c in cs:
            lines.append(f"| {c['label']} | {c['name']} | {c['motion']} | {c['scene'] or 'generic'} | "
                         f"{c['held'] or '-'} | {c['description']} |")
        lines.append("")
    lines += [
        "## What varies per video",
        "",
        "Drawn per clip from its own seed: the motion's tempo, amplitudes and phase, small joint noise and tempo "
        "drift; facing side (viewpoint flip) and yaw; the figure's size (56-70 % of the frame height times the "
        "actor's height) and position; the camera's start within the group's scene, panning, handheld jitter "
        "and slow drift; 0-2 scene-cut-like events; 1-2 moving distractors (ball, bird, balloon, leaf); "
        "lighting; sensor noise (Gaussian, sigma 1-2.5 grey levels); the held object's colours and grip angle. "
        "The figure is drawn as shaded, anti-aliased body parts (head with hair, torso, upper and lower arms, "
        "hands, thighs, shins, feet) with the group's clothing colours.",
        "",
        "## Video encoding and the GOP policy",
        "",
        *(_gop_policy(p, vids, iframe_counts, keyints, n_events) if gop is None
          else _fixed_gop(p, vids, iframe_counts, n_events)),
        "",
        "## Pose files",
        "",
        "Ground-truth 2D poses for every frame, written exactly as OpenPose's `--write_json` does with "
        "`--model_pose COCO`: one file per frame, `poses/openpose/<Class>/<video>_<frame:012d>_keypoints.json`, "
        "frames counted from 0, one line, no trailing newline:",
        "",
        "```",
        '{"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[x0,y0,c0,...,x17,y17,c17],'
        '"face_keypoints_2d":[],"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[],'
        '"pose_keypoints_3d":[],"face_keypoints_3d":[],"hand_left_keypoints_3d":[],"hand_right_keypoints_3d":[]}]}',
        "```",
        "",
        f"Keypoints in OpenPose COCO-18 order: {', '.join(f'{i} {n}' for i, n in enumerate(OPENPOSE_COCO18))}. "
        "x and y are pixels of the video frame (origin top-left, pixel centres at integers, rounded to 0.01), "
        "c is a confidence in [0, 1] (rounded to 0.001). A part OpenPose would not see is written as `0,0,0`: "
        "an eye or ear turned away from the camera, or a joint outside the frame. Arm and leg joints hidden "
        "behind the torso keep their true position with a lower confidence (about 0.4), as OpenPose usually "
        "still finds them. A frame where no joint is visible has `\"people\":[]`. Numbers are printed as "
        "OpenPose prints them (6 significant digits, `0` for zero).",
        "",
        "## synth.json",
        "",
        "`params` (the generation parameters" + ("" if gop is None else ", `gop` included") + "; a second run "
        "with the same parameters finds the dataset complete and does nothing" + ("" if gop is None else
        ", one with another `--gop` or none is refused") + "), `classes` (label, name, group, motion, scene, held object, description), `groups` "
        "(train/test), and `videos`: per video its path, class, label, group, clip, split, frames, bytes, "
        "`keyint`, `iframes`, `events`, scene, figure scale, camera follow, and motion details (tempo, facing, "
        "gestures).",
        "",
    ]
    return "\n".join(lines)


def _encoding(p: dict) -> str:
    return (f"H.264 (libx264 via PyAV), yuv420p, {p['fps']} fps, constant quality (crf {CRF}, preset {PRESET}), "
            "B-frames on, one thread (bit-exact).")


def _gop_policy(p: dict, vids: list, iframe_counts: list[int], keyints: list[int], n_events: int) -> list[str]:
    """The default per-video GOP policy (no ``--gop``)."""
    return [
        _encoding(p) + " I-frames come from two sources:",
        "",
        "- a keyframe interval drawn per video from 16..60 frames (x264 `keyint`), so I-frames are regular "
        "within a video but their spacing differs between videos;",
        "- scene-cut-like events: a camera cut (the framing jumps by 5-14 % of the width) or a lighting "
        "change (x0.8-0.9 or x1.1-1.2); the event's frame is forced to be an I-frame (an IDR frame; the "
        "keyint count restarts there).",
        "",
        "x264's own scene-cut detection is off, so these are the only I-frames; every I-frame is an IDR "
        "keyframe. `synth.json` lists each video's I-frame indices (`iframes`, 0-based, display order), its "
        f"`keyint` and its `events`. In this copy: {min(iframe_counts) if vids else 0}-"
        f"{max(iframe_counts) if vids else 0} I-frames per video (median {_median(iframe_counts)}), keyint "
        f"{min(keyints) if vids else 0}-{max(keyints) if vids else 0}, {n_events} events in all.",
    ]


def _fixed_gop(p: dict, vids: list, iframe_counts: list[int], n_events: int) -> list[str]:
    """A fixed GOP (``--gop N``)."""
    n = p["gop"]
    return [
        _encoding(p) + f" Fixed GOP of {n} frames (`--gop {n}`): x264 `keyint={n}:min-keyint={n}:scenecut=0` "
        "and no forced I-frames, so the I-frames of every video are exactly frames "
        f"0, {n}, {2 * n}, ... (every I-frame is an IDR keyframe). This is the encoding of the CSVR paper, "
        "which re-encodes every video with a GOP of 12 as CoViAR does: CSVR's context branch matches a clip "
        "with the I-frames inside its span, and with a fixed GOP every clip spanning at least "
        f"{n} frames holds one.",
        "",
        "Everything else about the videos is the same as without `--gop` (same seed: the same pictures up to "
        "coding noise, byte-identical pose files): the "
        "scene-cut-like events (camera cuts, lighting changes) still happen, but they do not force I-frames. "
        "`synth.json` lists each video's I-frame indices (`iframes`, 0-based, display order), its `keyint` "
        f"(= {n}) and its `events`. In this copy: {min(iframe_counts) if vids else 0}-"
        f"{max(iframe_counts) if vids else 0} I-frames per video, {n_events} events in all.",
    ]


def _span(gs: list[int]) -> str:
    if not gs:
        return "none"
    if gs == list(range(gs[0], gs[-1] + 1)) and len(gs) > 2:
        return f"g{gs[0]:02d}-g{gs[-1]:02d}"
    return ", ".join(f"g{g:02d}" for g in gs)


def _median(xs: list[int]) -> float:
    if not xs:
        return 0
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

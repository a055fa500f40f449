"""The class catalogue: 15 action classes in three groups mirroring Fig. 4 of the CSVR paper.

* ``motion`` (Fig. 4's orange group): the same scene distribution for every class (the group's
  generic scene: room, street, hall or yard), no object; the classes differ only in how the
  shared gait cycle unfolds in time (tempo, direction of the leg cycle, travel). A single frame
  shows the same poses in all of them; a pose sequence or a clip tells them apart.
* ``context`` (blue group): the same idle motion (standing, weight shifts, random everyday
  gestures and short exercises) everywhere; the class is the scene (kitchen, beach, gym) or the
  object in the right hand (racket, bat). Pose sequences carry nothing about the class.
* ``both`` (black group): a 2 x 2 grid of {walk, run} x {beach, gym}. Each motion also occurs
  in another class and each scene too; only the combination names the class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from csvr.errors import CsvrError

# Default size of the generated dataset (here, not in dataset.py, so the CLI's --help is cheap).
DEFAULT_VIDEOS_PER_CLASS = 16
DEFAULT_SECONDS = 4.0
DEFAULT_SIZE = (160, 120)

GROUPS = {
    "motion": "told apart only by movement (same scenes, same single-frame poses)",
    "context": "told apart only by the scene or a held object (same movement)",
    "both": "need movement and scene together (each motion and each scene occurs in two classes)",
}


@dataclass(frozen=True)
class ClassSpec:
    name: str
    group: str           # "motion" | "context" | "both"
    motion: str          # a key of csvr.synth.motions.MOTIONS
    scene: str | None    # a context scene kind, or None for the group's generic scene
    held: str | None     # "racket" | "bat" | None
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec("Walk", "motion", "walk", None, None,
              "walks in the facing direction, 0.8-1.15 gait cycles/s; the camera may pan along"),
    ClassSpec("Run", "motion", "run", None, None,
              "the same gait cycle and poses as Walk at 1.8-2.5 cycles/s, travelling faster"),
    ClassSpec("WalkBackward", "motion", "walk_backward", None, None,
              "the walking cycle played backwards in time, travelling against the facing direction"),
    ClassSpec("RunBackward", "motion", "run_backward", None, None,
              "backwards running (backpedalling): the time-reversed cycle at running tempo"),
    ClassSpec("Moonwalk", "motion", "moonwalk", None, None,
              "the forward walking cycle while gliding backwards (feet slide against the ground)"),
    ClassSpec("WalkInPlace", "motion", "walk_in_place", None, None,
              "the forward walking cycle without moving through the scene (as on a treadmill)"),
    ClassSpec("StandInKitchen", "context", "idle", "kitchen", None,
              "stands and fidgets (idle motion with random gestures) in a kitchen"),
    ClassSpec("StandOnBeach", "context", "idle", "beach", None,
              "the same idle motion on a beach (sky, sea, sand, parasols)"),
    ClassSpec("StandInGym", "context", "idle", "gym", None,
              "the same idle motion in a gym (wooden floor, wall bars, mats, hoops)"),
    ClassSpec("HoldRacket", "context", "idle", None, "racket",
              "the same idle motion in the generic scenes, holding a tennis racket in the right hand"),
    ClassSpec("HoldBat", "context", "idle", None, "bat",
              "the same idle motion in the generic scenes, holding a baseball bat in the right hand"),
    ClassSpec("WalkOnBeach", "both", "walk", "beach", None,
              "Walk's motion on the beach (the beach also hosts StandOnBeach and RunOnBeach)"),
    ClassSpec("RunOnBeach", "both", "run", "beach", None,
              "Run's motion on the beach"),
    ClassSpec("WalkInGym", "both", "walk", "gym", None,
              "Walk's motion in the gym (the gym also hosts StandInGym and RunInGym)"),
    ClassSpec("RunInGym", "both", "run", "gym", None,
              "Run's motion in the gym"),
)

BY_NAME = {c.name: c for c in CLASSES}

#: The order ``--classes N`` takes classes in: round-robin over the groups, so any N >= 3 has
#: all three groups, and the both-group grid fills pairwise.
PRIORITY = (
    "Walk", "StandInKitchen", "WalkOnBeach", "Run", "StandOnBeach", "RunOnBeach",
    "WalkBackward", "HoldRacket", "WalkInGym", "Moonwalk", "HoldBat", "RunInGym",
    "RunBackward", "StandInGym", "WalkInPlace",
)
assert sorted(PRIORITY) == sorted(BY_NAME)


def select_classes(spec: int | str | list[str] | tuple[str, ...] | None) -> list[ClassSpec]:
    """Classes for ``--classes``: None = all, an int N = the first N of :data:`PRIORITY`, or
    names (a list, or one comma-separated string; case-insensitive). Returned alphabetically,
    which is also their label order (as in UCF101's classInd.txt)."""
    if spec is None:
        names = list(BY_NAME)
    elif isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        n = int(spec)
        if not 1 <= n <= len(CLASSES):
            raise CsvrError(f"--classes {n}: choose between 1 and {len(CLASSES)} classes")
        names = list(PRIORITY[:n])
    else:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        lower = {k.lower(): k for k in BY_NAME}
        names = []
        for item in (i.strip() for i in items):
            if not item:
                continue
            if item.lower() not in lower:
                raise CsvrError(f"unknown class {item!r}; known classes: {', '.join(PRIORITY)}")
            if lower[item.lower()] not in names:
                names.append(lower[item.lower()])
        if not names:
            raise CsvrError("--classes: no class named")
    return [BY_NAME[n] for n in sorted(names)]

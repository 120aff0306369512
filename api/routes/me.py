"""``/access``: who the caller is to Vigil, and whom it may see: the patients of its
compartment, and those hidden from it by their own decision, with why. A dashboard lists
its patients from here; a clinician who misses one learns the reason instead of guessing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from api.deps import Access, require

router = APIRouter()


@router.get("/access")
def my_access(access: Annotated[Access, require("Patient", "search")]) -> dict[str, Any]:
    compartment = access.compartment
    access.touch(compartment.patients)
    return {
        "name": access.who.name,
        "kind": str(access.who.kind),
        "scopes": [str(s) for s in access.who.scopes],
        "patients": "all" if compartment.everyone else sorted(compartment.patients),
        "hidden": [{"patient": p, "why": why} for p, why in sorted(compartment.hidden.items())],
    }

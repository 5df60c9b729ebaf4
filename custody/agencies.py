"""The agencies of the community camera program: the city police and its partners.

Seeded by the first migration and again at start (idempotently), so a new partner added here reaches
existing databases too.
"""

from __future__ import annotations

from typing import Final

#: (code, name). The code is what tokens carry in `agency` and what `--agency` takes.
PROGRAM_AGENCIES: Final[tuple[tuple[str, str], ...]] = (
    ("MPD", "Metropolitan Police Department"),
    ("AMTRAK", "Amtrak Police Department"),
    ("VA-POLICE", "Virginia State Police"),
    ("MD-POLICE", "Maryland State Police"),
    ("DCHAPD", "DC Housing Authority Police Department"),
    ("MTPD", "Metro Transit Police Department"),
    ("USCP", "United States Capitol Police"),
    ("USPP", "United States Park Police"),
    ("FBI", "Federal Bureau of Investigation"),
    ("ATF", "Bureau of Alcohol, Tobacco, Firearms and Explosives"),
    ("USMS", "United States Marshals Service"),
    ("HSEMA", "DC Homeland Security and Emergency Management Agency"),
)

HOME_AGENCY: Final = "MPD"

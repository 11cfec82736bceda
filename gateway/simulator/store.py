"""All simulator state, one instance per app (kept under an ``AppKey``; no module globals).

Methods return ``None`` for "no such record" (views turn that into 404 naming the request
path) and raise :class:`~.errors.SimulatorError` for rule violations.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .config_schema import validate, with_defaults
from .errors import SimulatorError, conflict, invalid_parameter
from .models import (
    LISTING_FIELDS,
    Assignment,
    AvailableAddOn,
    InstalledAddOn,
    InstalledExtension,
    Listing,
)
from .seed import Seed
from .sids import new_sid


def utc_now() -> datetime:
    """Current UTC time to the second (Twilio dates carry no fractions)."""
    return datetime.now(UTC).replace(microsecond=0)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "add_on"


class Store:
    """Catalogue (global) plus installations, assignments and listings (per account)."""

    def __init__(self, seed: Seed, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self.api_keys: Mapping[str, str] = dict(seed.api_keys)
        self.available: dict[str, AvailableAddOn] = {a.sid: a for a in seed.available_add_ons}
        self.installed: dict[str, InstalledAddOn] = {}
        self.assignments: dict[tuple[str, str], dict[str, Assignment]] = {}
        self.listings: dict[str, Listing] = {
            x.sid: Listing(x.sid, x.account_sid, copy.deepcopy(x.data)) for x in seed.listings
        }
        self.usage: list[tuple[str, str, float]] = []
        self.referrals: set[str] = set()
        for pre in seed.installed_add_ons:
            item = self._new_installed(
                pre.account_sid, self.available[pre.available_add_on_sid], pre.unique_name
            )
            item.sid, item.configuration = pre.sid, copy.deepcopy(pre.configuration)
            item.date_created = item.date_updated = pre.date_created
            for ext in item.extensions.values():
                ext.enabled = ext.unique_name in pre.enabled_extensions
            self.installed[item.sid] = item
            for number in pre.assigned_to:
                self.assign(pre.account_sid, number, item.sid)

    # -- installed add-ons -------------------------------------------------------------

    def installed_in(self, account: str) -> list[InstalledAddOn]:
        """The account's installations, oldest first."""
        return [i for i in self.installed.values() if i.account_sid == account]

    def get_installed(self, account: str, sid: str) -> InstalledAddOn | None:
        """The installation *sid* if it belongs to *account*."""
        item = self.installed.get(sid)
        return item if item is not None and item.account_sid == account else None

    def _check_unique_name(self, account: str, name: str, own_sid: str | None = None) -> None:
        for other in self.installed_in(account):
            if other.unique_name == name and other.sid != own_sid:
                raise conflict(
                    f"UniqueName {name!r} is already used by installed add-on {other.sid}"
                )

    def _valid_configuration(
        self, available: AvailableAddOn, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        full = with_defaults(config, available.configuration_schema)
        problems = validate(full, available.configuration_schema)
        if problems:
            raise invalid_parameter("Invalid Configuration: " + "; ".join(problems))
        return full

    def _new_installed(
        self, account: str, available: AvailableAddOn, unique_name: str
    ) -> InstalledAddOn:
        now = self._clock()
        return InstalledAddOn(
            sid=new_sid("XE"),
            account_sid=account,
            available_add_on_sid=available.sid,
            friendly_name=available.friendly_name,
            description=available.description,
            configuration={},
            unique_name=unique_name,
            date_created=now,
            date_updated=now,
            extensions={
                e.sid: InstalledExtension(e.sid, e.friendly_name, e.product_name, e.unique_name)
                for e in available.extensions
            },
        )

    def _default_unique_name(self, account: str, available: AvailableAddOn) -> str:
        base = _slug(available.friendly_name)
        taken = {i.unique_name for i in self.installed_in(account)}
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def install(
        self,
        account: str,
        available: AvailableAddOn,
        configuration: Mapping[str, Any] | None,
        unique_name: str | None,
    ) -> InstalledAddOn:
        """Install *available*; every extension starts disabled. 409 on a taken UniqueName."""
        config = self._valid_configuration(available, configuration or {})
        if unique_name is None:
            unique_name = self._default_unique_name(account, available)
        self._check_unique_name(account, unique_name)
        item = self._new_installed(account, available, unique_name)
        item.configuration = config
        self.installed[item.sid] = item
        return item

    def update_installed(
        self,
        item: InstalledAddOn,
        configuration: Mapping[str, Any] | None,
        unique_name: str | None,
    ) -> InstalledAddOn:
        """Replace the configuration and/or rename; validation as on install."""
        new_config = item.configuration
        if configuration is not None:
            new_config = self._valid_configuration(
                self.available[item.available_add_on_sid], configuration
            )
        if unique_name is not None:
            self._check_unique_name(item.account_sid, unique_name, own_sid=item.sid)
            item.unique_name = unique_name
        item.configuration = new_config
        item.date_updated = self._clock()
        return item

    def uninstall(self, item: InstalledAddOn) -> None:
        """Delete an installation; 400 while any phone number still has it assigned."""
        numbers = sorted(
            number
            for (account, number), assigned in self.assignments.items()
            if account == item.account_sid and item.sid in assigned
        )
        if numbers:
            raise SimulatorError(
                400,
                20001,
                f"Installed add-on {item.sid} is still assigned to {', '.join(numbers)}; "
                "remove those assignments first",
            )
        del self.installed[item.sid]

    def set_enabled(
        self, item: InstalledAddOn, extension: InstalledExtension, enabled: bool
    ) -> None:
        """Enable or disable one extension of an installation."""
        extension.enabled = enabled
        item.date_updated = self._clock()

    # -- 2010 assignments ----------------------------------------------------------------

    def assigned_to(self, account: str, number: str) -> list[Assignment]:
        """Assignments of one phone number, oldest first."""
        return list(self.assignments.get((account, number), {}).values())

    def get_assignment(self, account: str, number: str, sid: str) -> Assignment | None:
        """One assignment by installed add-on sid, or by its unique_name (2010 spec allows it)."""
        assigned = self.assignments.get((account, number), {})
        if sid in assigned:
            return assigned[sid]
        for assignment in assigned.values():
            if self.installed[assignment.installed_add_on_sid].unique_name == sid:
                return assignment
        return None

    def assign(self, account: str, number: str, installed_sid: str) -> Assignment:
        """Assign an installation to a number; 409 if already assigned there."""
        assigned = self.assignments.setdefault((account, number), {})
        if installed_sid in assigned:
            raise conflict(f"Installed add-on {installed_sid} is already assigned to {number}")
        now = self._clock()
        assigned[installed_sid] = Assignment(account, number, installed_sid, now, now)
        return assigned[installed_sid]

    def unassign(self, assignment: Assignment) -> None:
        """Remove one assignment."""
        del self.assignments[(assignment.account_sid, assignment.resource_sid)][
            assignment.installed_add_on_sid
        ]

    # -- listings, usage, referrals -----------------------------------------------------

    def listings_of(self, account: str) -> list[Listing]:
        """Listings owned by *account* plus the public (owner-less) ones."""
        return [x for x in self.listings.values() if x.account_sid in (None, account)]

    def get_listing(self, account: str, sid: str) -> Listing | None:
        """A listing visible to *account*."""
        item = self.listings.get(sid)
        return item if item is not None and item.account_sid in (None, account) else None

    def create_listing(self, account: str, data: Mapping[str, dict[str, Any]]) -> Listing:
        """A new listing owned by *account*; missing object fields start as ``{}``."""
        item = Listing(new_sid("XB"), account, {f: dict(data.get(f, {})) for f in LISTING_FIELDS})
        self.listings[item.sid] = item
        return item

    def update_listing(self, item: Listing, changes: Mapping[str, dict[str, Any]]) -> None:
        """Replace the given object fields of a listing."""
        item.data.update({name: dict(value) for name, value in changes.items()})

    def record_usage(self, item: InstalledAddOn, items: list[tuple[str, float]]) -> None:
        """Remember submitted billable items ``(sid, quantity)``."""
        self.usage += [(item.sid, sid, quantity) for sid, quantity in items]

    def convert_referral(self, account_sid: str) -> bool:
        """Record a referral conversion; True when it is new."""
        new = account_sid not in self.referrals
        self.referrals.add(account_sid)
        return new

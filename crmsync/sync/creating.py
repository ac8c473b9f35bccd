"""New local records for new remote records: built with the values the local fields can
hold, created and linked together, then given their sync id remotely."""

from ..adapters.base import RemoteRecord, Unmapped
from ..clock import remote_now
from ..entities import ENTITIES
from ..exceptions import AdapterError, LeaseLost, MappingError, TransientAdapterError
from ..models import SyncLink
from ..outbox import applying_remote_changes, mark_dirty
from ..records import apply_values, fit_remote_values, is_required, local_values, stand_in
from . import conflicts, faults, quarantine
from .context import RunContext
from .remote import send_update

# Failures that stop the run (and are retried by the next one) rather than one record.
RUN_FAILURES = (LeaseLost, TransientAdapterError)


def create_locals(ctx: RunContext, entity: str, records: list[RemoteRecord], *, duplicate_of=None) -> list:
    """New local records for new remote records, created and linked together in one
    transaction (one by one when that fails, so one bad record is quarantined alone);
    then each remote record gets its sync id (one update each). Returns the remote ids
    applied."""
    prepared = []
    for record in records:
        try:
            prepared.append(prepare_local(ctx, entity, record))
        except MappingError as err:
            quarantine.fail_remote(ctx, entity, record.remote_id, err)
    if not prepared:
        return []
    try:
        insert_locals(ctx, entity, prepared, duplicate_of)
    except RUN_FAILURES:
        raise
    except Exception:
        prepared = insert_one_by_one(ctx, entity, prepared, duplicate_of)
    for one in prepared:
        faults.point("pull:before-sync-id")
        # Write the new record's UUID back as the page's CRM Sync ID (one update).
        try:
            send_update(ctx, entity, one.link, {}, sync_id=one.instance.pk)
        except RUN_FAILURES:
            raise
        except AdapterError as err:
            quarantine.fail_remote(ctx, entity, one.record.remote_id, err, local_id=one.instance.pk)
    return [one.record.remote_id for one in prepared]


def insert_one_by_one(ctx: RunContext, entity: str, prepared: list, duplicate_of) -> list:
    """Insert each record on its own; a record the database refuses is quarantined."""
    done = []
    for one in prepared:
        try:
            insert_locals(ctx, entity, [one], duplicate_of)
        except RUN_FAILURES:
            raise
        except Exception as err:
            quarantine.fail_remote(ctx, entity, one.record.remote_id, err)
        else:
            done.append(one)
    return done


class PreparedLocal:
    """A new local record built from a remote one, not saved yet."""

    def __init__(self, record, instance, values, base, unusable):
        self.record, self.instance, self.base, self.unusable = record, instance, base, unusable
        self.values = values  # local_values(instance)
        self.link = None


def prepare_local(ctx: RunContext, entity: str, record: RemoteRecord) -> PreparedLocal:
    """Build the local record: usable values applied (values its validators refuse are
    left at their defaults, or a required field's stand-in, and shown as open
    conflicts); the base is what was applied."""
    spec = ENTITIES[entity]
    blocked = ctx.blocked_fields(entity)
    plain = {k: v for k, v in record.values.items() if not isinstance(v, Unmapped) and k not in blocked}
    unmapped = {k: v for k, v in record.values.items() if isinstance(v, Unmapped) and k not in blocked}
    fitted, problems = fit_remote_values(spec, plain)
    # No local row is ever created with a value its validators refuse (DESIGN §7): a
    # required field takes its stand-in ("Untitled") and the refused value shows as an
    # open conflict; with no stand-in the record is held in quarantine until fixed.
    stand_ins = {name: stand_in(spec, name) for name in problems if is_required(spec, name)}
    required = [problems[name] for name, value in stand_ins.items() if value is None]
    if required:
        raise MappingError(f"cannot be imported: {'; '.join(required)}")
    values = {**{k: v for k, v in fitted.items() if k not in problems}, **stand_ins}
    instance = spec.get_model()()
    with applying_remote_changes(ctx.alias):
        apply_values(instance, values)
    moment = (record.modified_at or remote_now()).isoformat()
    instance.field_modified_at = dict.fromkeys(values, moment)
    instance.archived = record.archived
    applied = local_values(instance)
    base = {k: applied[k] for k in values if k in applied}

    invalid = {k: (plain[k], problem) for k, problem in problems.items()}
    return PreparedLocal(record, instance, applied, base, (unmapped, invalid))


def insert_locals(ctx: RunContext, entity: str, prepared: list[PreparedLocal], duplicate_of) -> None:
    model = ENTITIES[entity].get_model()
    with ctx.atomic(), applying_remote_changes(ctx.alias):
        model._default_manager.bulk_create([one.instance for one in prepared])
        links = SyncLink.objects.bulk_create(
            [
                SyncLink(
                    connection=ctx.alias,
                    entity=entity,
                    local_id=one.instance.pk,
                    remote_id=one.record.remote_id,
                    base=one.base,
                    remote_modified_at=one.record.modified_at,
                    remote_archived=one.record.archived,
                )
                for one in prepared
            ]
        )
        mark_dirty(entity, [one.instance.pk for one in prepared], exclude=ctx.alias)
        for one, link in zip(prepared, links, strict=True):
            one.link = link
            unmapped, invalid = one.unusable
            decisions = conflicts.unusable_decisions(ctx.owners(entity), one.values, unmapped, invalid)
            if duplicate_of is not None:
                decisions.append(conflicts.duplicate_decision(duplicate_of.pk, one.record.sync_id))
            if decisions:
                conflicts.save_decisions(
                    ctx.alias, entity, one.instance, decisions, one.record.modified_at, ctx.stats
                )
    ctx.stats["created_local"] += len(prepared)

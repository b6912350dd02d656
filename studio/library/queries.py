"""The team library's one query: a team's images, newest first, narrowed by the filters
and marked with the viewer's stars, in a fixed number of queries whatever its length."""

from django.db.models import Exists, OuterRef, Q

from studio.library.models import Asset, Star


def library_assets(team, user, filters):
    """The team's assets (job outputs and uploaded RMBG inputs) that pass `filters`, each
    with its job, its author and `starred` (by `user`) loaded in the same query.

    `filters` is a dict with any of: model ("fibo"/"rmbg"), member (a username), start
    and end (aware datetimes, end excluded), status (a job status), q (text in the prompt)
    and starred (True for starred only). Missing or empty keys do not filter.
    """
    assets = (
        Asset.objects.filter(team=team)
        .select_related("job", "job__created_by", "created_by")
        .annotate(starred=Exists(Star.objects.filter(asset=OuterRef("pk"), user=user)))
        .order_by("-created_at", "-pk")
    )
    if model := filters.get("model"):
        # An uploaded input has no job of its own; it only ever goes to RMBG.
        by_model = Q(job__model=model)
        if model == "rmbg":
            by_model |= Q(role=Asset.Role.INPUT)
        assets = assets.filter(by_model)
    if member := filters.get("member"):
        # Outputs belong to whoever ran the job (older ones have no created_by of their own).
        by_author = Q(created_by__username=member)
        assets = assets.filter(by_author | Q(created_by__isnull=True, job__created_by__username=member))
    if start := filters.get("start"):
        assets = assets.filter(created_at__gte=start)
    if end := filters.get("end"):
        assets = assets.filter(created_at__lt=end)
    if status := filters.get("status"):
        # Inputs have no job, so no status: a status filter leaves them out.
        assets = assets.filter(job__status=status)
    if q := filters.get("q"):
        assets = assets.filter(job__params__prompt__icontains=q)
    if filters.get("starred"):
        assets = assets.filter(starred=True)
    return assets

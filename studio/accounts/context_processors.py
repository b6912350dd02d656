from studio.accounts.access import current_membership


def current_team(request):
    membership = current_membership(request)
    if membership is None:
        return {}
    return {"membership": membership, "team": membership.team, "wallet": membership.team.wallet}

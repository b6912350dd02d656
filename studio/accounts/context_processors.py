from studio.accounts.access import current_membership
from studio.billing.money import is_low


def current_team(request):
    membership = current_membership(request)
    if membership is None:
        return {}
    wallet = membership.team.wallet
    return {"membership": membership, "team": membership.team, "wallet": wallet, "low_balance": is_low(wallet)}

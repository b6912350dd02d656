"""A few answers under /api/ are made before the API's own error handlers can run:
Django's 404 for a path no endpoint matches (the API root included) and django-ninja's
405 for a method an endpoint does not take. This turns them into the API's error shape,
so a client parses every refusal the same way."""

from django.http import JsonResponse

API_PREFIX = "/api/"
REWRITTEN = {
    404: ("not_found", "There is no such API endpoint or object."),
    405: ("method_not_allowed", "This endpoint does not take that method; see the Allow header."),
}


class APIErrorShape:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith(API_PREFIX) and response.status_code in REWRITTEN
                and not response.get("Content-Type", "").startswith("application/json")):
            error, message = REWRITTEN[response.status_code]
            shaped = JsonResponse({"error": error, "message": message, "details": []}, status=response.status_code)
            if response.has_header("Allow"):
                shaped["Allow"] = response["Allow"]
            return shaped
        return response

"""Run the Pixazo gateway emulator: python manage.py pixazo_emulator --port 8765"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.emulator.server import EmulatorServer


class Command(BaseCommand):
    # The emulator needs no database or app state, so project check errors must not block it.
    requires_system_checks = []
    help = "Serve an in-memory emulator of the Pixazo gateway (Bria FIBO + RMBG 2.0) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 picks a free one)")
        parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
        parser.add_argument("--api-key", default=None, help="subscription key to accept (default settings.PIXAZO_API_KEY)")
        parser.add_argument("--delay", type=float, default=3.0, help="seconds from submit to terminal status")
        parser.add_argument(
            "--allow-http-webhooks",
            action="store_true",
            help="accept plain http:// X-Webhook-URL values (the real gateway requires https)",
        )
        parser.add_argument(
            "--duplicate-rate", type=float, default=0.2, help="probability of delivering a webhook twice (0..1)"
        )
        parser.add_argument(
            "--public-url", default=None, help="base URL clients should see in polling_url and media_url"
        )

    def handle(self, *args, **options):
        api_key = options["api_key"] or getattr(settings, "PIXAZO_API_KEY", "") or "emulator-key"
        try:
            server = EmulatorServer(
                host=options["host"],
                port=options["port"],
                api_key=api_key,
                delay=options["delay"],
                allow_http_webhooks=options["allow_http_webhooks"],
                duplicate_rate=options["duplicate_rate"],
                public_url=options["public_url"],
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot start the emulator: {exc}") from exc

        try:
            self.stdout.write(f"Pixazo emulator listening on {server.bound_url}")
            if server.url != server.bound_url:
                self.stdout.write(f"Public URL (polling_url, media_url): {server.url}")
            self.stdout.flush()
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Pixazo emulator stopped")
        finally:
            server.stop()

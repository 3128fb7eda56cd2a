"""Verify webhooks captured by a test with the reference `standardwebhooks` package.

stdin: {"secrets": ["whsec_..."], "messages": [{"headers": {...}, "body": "..."}]}
Every message must verify under every secret given; a tampered copy of each
must be refused (so the check can fail). Prints one JSON line and exits 0 only
when all of that holds.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    request = json.load(sys.stdin)
    verified = 0
    problems = []
    for secret in request["secrets"]:
        hook = Webhook(secret)
        for message in request["messages"]:
            headers = message["headers"]
            body = message["body"]
            try:
                payload = hook.verify(body, headers)
            except WebhookVerificationError as error:
                problems.append(f"{headers.get('webhook-id')}: {error}")
                continue
            if not isinstance(payload, dict):
                problems.append(f"{headers.get('webhook-id')}: body is not a JSON object")
                continue
            verified += 1
            try:
                hook.verify(body + " ", headers)
                problems.append(f"{headers.get('webhook-id')}: a tampered body verified")
            except WebhookVerificationError:
                pass
    print(json.dumps({"verified": verified, "problems": problems}))
    return 0 if not problems and verified > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

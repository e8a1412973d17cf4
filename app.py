"""PayFlow's Chalice application: routes and Lambda entry points, nothing else.

Every route lives in a blueprint under chalicelib/api/; business rules live in
chalicelib/domain and chalicelib/services; only chalicelib/dal talks to AWS.
"""

from chalice import Chalice

from chalicelib.api.payment_intents import payment_intents
from chalicelib.api.sandbox import sandbox

app = Chalice(app_name="payflow")
app.register_blueprint(sandbox)
app.register_blueprint(payment_intents)

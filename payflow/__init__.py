"""PayFlow: a Stripe-compatible payment sandbox on serverless AWS that runs on a laptop."""

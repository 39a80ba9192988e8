"""What the protocol adapters (the route modules beside this package) share: SSE, sampling parameters,
logprobs, tools and response_format, the model a request is routed to."""

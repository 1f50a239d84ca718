"""The core's rules, as plain async functions over a :class:`tenure.core.context.ServiceContext`.

Every write happens in the caller's transaction; a :class:`tenure.core.errors.UserError` raised
here rolls it back, so bad input writes nothing.
"""

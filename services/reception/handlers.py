"""Events reception consumes (none yet: it is the start of the flow)."""

from shared.consumers import Subscribers

subscriber = Subscribers()

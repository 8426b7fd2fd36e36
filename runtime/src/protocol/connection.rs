//! One client connection: frames in, responses out in request order.

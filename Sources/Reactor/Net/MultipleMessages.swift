import CReactor

// `sendmmsg(2)` and `recvmmsg(2)`, which need `_GNU_SOURCE` and so come from CReactor.
//
// This file names nothing from the socket headers, and the files that do (msghdr,
// MSG_TRUNC, SOCK_DGRAM, ...) do not import CReactor. CReactor.h includes
// <sys/socket.h>, so a file that sees those names through both Glibc and CReactor can
// make CReactor their owner in a whole-module (release) build, which hides them from
// every file that imports Glibc alone.

/// `sendmmsg(2)`: sends the messages of `count` headers laid out as `struct mmsghdr`
/// (``MultipleMessageHeader``). Returns how many were sent, or -1 with `errno` set.
func sendMultipleMessages(_ fd: CInt, _ headers: UnsafeMutableRawPointer, count: CUnsignedInt, flags: CInt) -> CInt {
    creactor_sendmmsg(fd, OpaquePointer(headers), count, flags)
}

/// `recvmmsg(2)` with no timeout: fills up to `count` headers laid out as
/// `struct mmsghdr`. Returns how many were filled, or -1 with `errno` set.
func receiveMultipleMessages(_ fd: CInt, _ headers: UnsafeMutableRawPointer, count: CUnsignedInt) -> CInt {
    creactor_recvmmsg(fd, OpaquePointer(headers), count, 0)
}

/// `sizeof(struct mmsghdr)` and `offsetof(struct mmsghdr, msg_len)`, as the C compiler
/// lays it out.
let multipleMessageHeaderLayout = (size: CREACTOR_MMSGHDR_SIZE, lengthOffset: CREACTOR_MMSGHDR_LENGTH_OFFSET)

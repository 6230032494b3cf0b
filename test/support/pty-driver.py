#!/usr/bin/env python3
"""Run one command in a real pseudo-terminal and follow a JSON script.

Usage:
  pty-driver.py [--cols N] [--rows N] [--script FILE|-] [--env-file FILE]
                [--max-ms N] -- COMMAND [ARG...]

The script (FILE, or stdin with "-", the default) is either a JSON array of
steps or an object {"script": [...], "env": {...}, "cols": N, "rows": N}
(command-line options win over the object's cols/rows). Without an env, the
child inherits this process's environment; with one, it gets exactly that.

Steps (one key each, plus the optional "label"):
  {"waitFor": "text", "timeoutMs": 5000}       plain text, or with "regex": true a
                                               Python regex (re.S), matched against
                                               the ANSI-stripped output since the end
                                               of the previous waitFor match
  {"send": "\\u001b[B"}                        bytes to type (UTF-8), Ctrl+C is "\\u0003"
  {"mark": "name"}                             a named point in time and output
  {"sleepMs": 150}                             keep reading output meanwhile
  {"signal": "SIGHUP"}                         to the child; "group": true for its group
  {"resize": {"cols": 100, "rows": 30}}        TIOCSWINSZ on the pty (the kernel sends SIGWINCH)
  {"snapshot": "name"}                         record the screen as it is now (result.snapshots)
  {"screenTo": "/path"}                        write the screen as it is now to a file (for a test to read mid-run)
  {"sendFromFile": "/path"}                    wait for the file, send its content, remove it (input a test computes mid-run)
  {"closePty": true}                           close our end, as a dropped SSH link does
  {"waitExit": true, "timeoutMs": 5000}        wait for the child to exit

Never hangs: every wait has a timeout (default 5000 ms) and the whole run has
--max-ms (default 120000). On a timeout the child's process group is killed
(SIGTERM, then SIGKILL) and the result says which step timed out, with the
last 2000 characters of output. A script that ends without waitExit also gets
its child killed (killedAtEnd: true).

Prints ONE JSON object on stdout (see pty.ts, PtyResult, for the fields).
Exit status 0 whenever that JSON was printed; 2 for usage errors.
"""

import base64
import codecs
import errno
import fcntl
import json
import os
import re
import resource
import select
import signal
import struct
import sys
import termios
import time
import unicodedata

DEFAULT_TIMEOUT_MS = 5000
TAIL_CHARS = 2000
READ_SIZE = 65536

T0 = time.monotonic_ns()


def now_ms():
    return (time.monotonic_ns() - T0) / 1e6


def r3(x):
    return round(x, 3)


# --------------------------------------------------------------------------
# Output parsing: one incremental VT parser feeds both the plain-text
# rendering (escapes stripped) and a small screen model.


class Screen:
    """Enough of a VT100/xterm to show what the user would see at the end."""

    def __init__(self, cols, rows):
        self.cols = cols
        self.rows = rows
        self.grid = [[' '] * cols for _ in range(rows)]
        self.scrollback = []
        self.r = 0
        self.c = 0
        self.wrap_pending = False
        self.saved = (0, 0)
        self.clears = 0  # ESC[2J / ESC[3J count: full-screen wipes

    def resize(self, cols, rows):
        grid = [[' '] * cols for _ in range(rows)]
        # keep the bottom of the old grid, as most terminals do
        old = self.grid[-rows:] if rows < self.rows else self.grid
        top = max(0, self.rows - rows)
        for i, line in enumerate(old):
            for j, ch in enumerate(line[:cols]):
                grid[i][j] = ch
        self.r = max(0, min(rows - 1, self.r - top))
        self.c = min(cols - 1, self.c)
        self.cols, self.rows, self.grid = cols, rows, grid
        self.wrap_pending = False

    def _scroll_up(self):
        self.scrollback.append(''.join(self.grid[0]).rstrip())
        del self.grid[0]
        self.grid.append([' '] * self.cols)

    def linefeed(self):
        self.wrap_pending = False
        if self.r == self.rows - 1:
            self._scroll_up()
        else:
            self.r += 1

    def reverse_index(self):
        self.wrap_pending = False
        if self.r == 0:
            self.grid.insert(0, [' '] * self.cols)
            del self.grid[-1]
        else:
            self.r -= 1

    def put(self, ch):
        cat = unicodedata.category(ch)
        if cat in ('Mn', 'Me', 'Cf'):
            return  # combining marks and zero-width format characters
        width = 2 if unicodedata.east_asian_width(ch) in ('W', 'F') else 1
        if self.wrap_pending or self.c + width > self.cols:
            self.c = 0
            self.linefeed()
        self.grid[self.r][self.c] = ch
        if width == 2 and self.c + 1 < self.cols:
            self.grid[self.r][self.c + 1] = ''
        self.c += width
        if self.c >= self.cols:
            self.c = self.cols - 1
            self.wrap_pending = True

    def control(self, ch):
        if ch == '\n' or ch == '\x0b' or ch == '\x0c':
            self.linefeed()
        elif ch == '\r':
            self.c = 0
            self.wrap_pending = False
        elif ch == '\b':
            self.c = max(0, self.c - 1)
            self.wrap_pending = False
        elif ch == '\t':
            self.c = min(self.cols - 1, (self.c // 8 + 1) * 8)

    def _clamp(self):
        self.r = max(0, min(self.rows - 1, self.r))
        self.c = max(0, min(self.cols - 1, self.c))
        self.wrap_pending = False

    def erase_line(self, mode, row=None):
        row = self.r if row is None else row
        line = self.grid[row]
        if mode == 0:
            rng = range(self.c, self.cols)
        elif mode == 1:
            rng = range(0, self.c + 1)
        else:
            rng = range(0, self.cols)
        for j in rng:
            line[j] = ' '

    def csi(self, private, params, final):
        nums = []
        for p in params.split(';') if params else []:
            try:
                nums.append(int(p.split(':')[0]) if p else 0)
            except ValueError:
                nums.append(0)
        n = nums[0] if nums and nums[0] > 0 else 1
        if private:
            return  # modes (?25l, ?2026h, ...) do not move anything
        if final == 'A':
            self.r -= n
        elif final == 'B' or final == 'e':
            self.r += n
        elif final == 'C' or final == 'a':
            self.c += n
        elif final == 'D':
            self.c -= n
        elif final == 'E':
            self.r += n
            self.c = 0
        elif final == 'F':
            self.r -= n
            self.c = 0
        elif final == 'G' or final == '`':
            self.c = n - 1
        elif final == 'd':
            self.r = n - 1
        elif final in ('H', 'f'):
            row = nums[0] if len(nums) > 0 and nums[0] > 0 else 1
            col = nums[1] if len(nums) > 1 and nums[1] > 0 else 1
            self.r, self.c = row - 1, col - 1
        elif final == 'J':
            mode = nums[0] if nums else 0
            if mode == 0:
                self.erase_line(0)
                for i in range(self.r + 1, self.rows):
                    self.erase_line(2, i)
            elif mode == 1:
                self.erase_line(1)
                for i in range(0, self.r):
                    self.erase_line(2, i)
            elif mode in (2, 3):
                self.clears += 1
                for i in range(self.rows):
                    self.erase_line(2, i)
                if mode == 3:
                    self.scrollback = []
            return
        elif final == 'K':
            self.erase_line(nums[0] if nums else 0)
            return
        elif final == 's':
            self.saved = (self.r, self.c)
            return
        elif final == 'u':
            self.r, self.c = self.saved
        else:
            return  # SGR and everything else: no cursor effect
        self._clamp()

    def esc(self, ch):
        if ch == '7':
            self.saved = (self.r, self.c)
        elif ch == '8':
            self.r, self.c = self.saved
            self._clamp()
        elif ch == 'M':
            self.reverse_index()
        elif ch == 'D':
            self.linefeed()
        elif ch == 'E':
            self.c = 0
            self.linefeed()
        elif ch == 'c':
            self.__init__(self.cols, self.rows)

    def lines(self):
        return [''.join(line).rstrip() for line in self.grid]


class Parser:
    """Incremental UTF-8 + escape-sequence parser.

    plain: the output with escapes removed, CR LF folded to LF, lone CRs
    dropped, and a line break put where a cursor movement changes line (so
    that text redrawn on different lines does not run together).
    """

    GROUND, ESC, ESC_INTER, CSI, OSC, STR, STR_ESC = range(7)

    def __init__(self, cols, rows):
        self.decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self.state = self.GROUND
        self.csi_buf = ''
        self.plain_parts = []
        self.plain_len = 0
        self.last_plain = '\n'
        self.screen = Screen(cols, rows)

    def _emit(self, text):
        if not text:
            return
        self.plain_parts.append(text)
        self.plain_len += len(text)
        self.last_plain = text[-1]

    def _break(self):
        if self.last_plain != '\n':
            self._emit('\n')

    def feed(self, data):
        text = self.decoder.decode(data)
        run = []  # printable characters in a row, emitted together
        scr = self.screen
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            i += 1
            st = self.state
            if st == self.GROUND:
                o = ord(ch)
                if o >= 0x20 and o != 0x7f and not (0x80 <= o < 0xa0):
                    run.append(ch)
                    scr.put(ch)
                    continue
                if run:
                    self._emit(''.join(run))
                    run = []
                if ch == '\x1b':
                    self.state = self.ESC
                elif o == 0x9b:
                    self.state, self.csi_buf = self.CSI, ''
                elif o == 0x9d:
                    self.state = self.OSC
                elif o in (0x90, 0x98, 0x9e, 0x9f):
                    self.state = self.STR
                elif ch == '\n':
                    self._emit('\n')
                    scr.control(ch)
                elif ch == '\t':
                    self._emit('\t')
                    scr.control(ch)
                else:
                    scr.control(ch)  # \r, \b, BEL and other C0: nothing in plain
            elif st == self.ESC:
                if ch == '[':
                    self.state, self.csi_buf = self.CSI, ''
                elif ch == ']':
                    self.state = self.OSC
                elif ch in 'PX^_':
                    self.state = self.STR
                elif '\x20' <= ch <= '\x2f':
                    self.state = self.ESC_INTER
                else:
                    if ch in 'MDE':
                        self._break()
                    scr.esc(ch)
                    self.state = self.GROUND
            elif st == self.ESC_INTER:
                if not ('\x20' <= ch <= '\x2f'):
                    self.state = self.GROUND
            elif st == self.CSI:
                if '\x40' <= ch <= '\x7e':
                    buf = self.csi_buf
                    private = bool(buf) and buf[0] in '?<=>'
                    params = buf[1:] if private else buf
                    if not private and ch in 'ABEFHfdJ':
                        self._break()
                    scr.csi(private, params, ch)
                    self.state = self.GROUND
                elif ch == '\x1b':
                    self.state = self.ESC  # malformed; start over
                else:
                    self.csi_buf += ch
            elif st == self.OSC or st == self.STR:
                if ch == '\x9c' or (st == self.OSC and ch == '\x07'):
                    self.state = self.GROUND
                elif ch == '\x1b':
                    self.state = self.STR_ESC
            elif st == self.STR_ESC:
                if ch == '\\':
                    self.state = self.GROUND  # ESC \ ends the string
                else:
                    self.state = self.ESC  # a new escape: read ch again in that state
                    i -= 1
        if run:
            self._emit(''.join(run))

    def plain(self):
        if len(self.plain_parts) > 1:
            self.plain_parts = [''.join(self.plain_parts)]
        return self.plain_parts[0] if self.plain_parts else ''


# --------------------------------------------------------------------------


class Timeout(Exception):
    pass


class Driver:
    def __init__(self, argv, env, cols, rows, max_ms):
        self.argv = argv
        self.env = env
        self.cols = cols
        self.rows = rows
        self.deadline_ms = max_ms
        self.raw = bytearray()
        self.chunks = []  # [t_ms, offset, length]
        self.parser = Parser(cols, rows)
        self.master = None
        self.pid = None
        self.status = None  # os.waitpid status once reaped
        self.exit_ms = None
        self.eof = False
        self.pidfd = None
        self.wait_pos = 0  # plain-text position where the next waitFor starts looking

    # -- process ---------------------------------------------------------

    def spawn(self):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', self.rows, self.cols, 0, 0))
        # Report exec failures through a close-on-exec pipe.
        err_r, err_w = os.pipe()
        os.set_inheritable(err_w, False)
        self.spawn_ms = now_ms()
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(master)
                os.close(err_r)
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                if slave > 2:
                    os.close(slave)
                for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                if self.env is None:
                    os.execvp(self.argv[0], self.argv)
                else:
                    os.execvpe(self.argv[0], self.argv, self.env)
            except BaseException as e:  # noqa: BLE001 - must never return to the parent's code
                try:
                    os.write(err_w, ('%s: %s' % (type(e).__name__, e)).encode('utf-8', 'replace'))
                finally:
                    os._exit(127)
        os.close(slave)
        os.close(err_w)
        self.pid = pid
        self.master = master
        try:
            self.pidfd = os.pidfd_open(pid)  # readable once the child exits (Linux 5.3+)
        except (AttributeError, OSError):
            self.pidfd = None
        os.set_blocking(master, False)
        err = b''
        while True:
            part = os.read(err_r, 4096)
            if not part:
                break
            err += part
        os.close(err_r)
        return err.decode('utf-8', 'replace') or None

    def reap(self, block=False):
        if self.status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False
        self.status = status
        self.exit_ms = now_ms()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return True

    def kill_group(self):
        """SIGTERM the child's process group, SIGKILL after 1 s if still alive."""
        if self.reap():
            return
        for sig, grace in ((signal.SIGTERM, 1000), (signal.SIGKILL, 2000)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                os.kill(self.pid, sig)
            end = now_ms() + grace
            while now_ms() < end:
                self.pump(20)
                if self.reap():
                    return
        self.reap(block=True)

    # -- I/O -------------------------------------------------------------

    def pump(self, timeout_ms):
        """Read whatever the child writes, for up to timeout_ms. Returns bytes read.

        Also wakes up (and reaps) as soon as the child exits, through its pidfd.
        """
        fds = []
        if self.master is not None and not self.eof:
            fds.append(self.master)
        if self.pidfd is not None and self.status is None:
            fds.append(self.pidfd)
        if not fds:
            if timeout_ms > 0:
                time.sleep(timeout_ms / 1000)
            return 0
        try:
            ready, _, _ = select.select(fds, [], [], max(0, timeout_ms) / 1000)
        except InterruptedError:
            return 0
        if self.pidfd is not None and self.pidfd in ready:
            self.reap()
        if self.master is None or self.master not in ready:
            return 0
        total = 0
        while True:
            try:
                data = os.read(self.master, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EIO:  # Linux: every slave fd is closed
                    self.eof = True
                    break
                raise
            if not data:
                self.eof = True
                break
            self.chunks.append([r3(now_ms() - self.spawn_ms), len(self.raw), len(data)])
            self.raw += data
            self.parser.feed(data)
            total += len(data)
        return total

    def write(self, data, timeout_ms):
        end = now_ms() + timeout_ms
        view = memoryview(data)
        while view:
            if self.master is None:
                raise Timeout('the pty is closed')
            if now_ms() > end:
                raise Timeout('the child stopped reading its input')
            _, w, _ = select.select([], [self.master], [], 0.02)
            if w:
                try:
                    n = os.write(self.master, view)
                    view = view[n:]
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno == errno.EIO:  # nobody has the terminal open any more
                        return False
                    raise
            self.pump(0)
        return True

    def check_deadline(self):
        if now_ms() > self.deadline_ms:
            raise Timeout('the whole run exceeded --max-ms (%d ms)' % self.deadline_ms)

    # -- steps -----------------------------------------------------------

    def wait_for(self, step, timeout_ms):
        pattern = step['waitFor']
        regex = re.compile(pattern, re.S) if step.get('regex') else None
        end = now_ms() + timeout_ms
        while True:
            text = self.parser.plain()
            if regex is not None:
                m = regex.search(text, self.wait_pos)
                found = (m.start(), m.end(), m.group(0)) if m else None
            else:
                i = text.find(pattern, self.wait_pos)
                found = (i, i + len(pattern), pattern) if i >= 0 else None
            if found:
                self.wait_pos = found[1]
                return {'matchedMs': r3(now_ms() - self.spawn_ms), 'match': found[2]}
            if now_ms() > end:
                raise Timeout('waitFor %r not seen within %d ms' % (pattern, timeout_ms))
            self.check_deadline()
            if self.eof and self.reap():
                raise Timeout('waitFor %r: the child exited first' % pattern)
            self.pump(min(20, max(1, end - now_ms())))

    def wait_exit(self, timeout_ms):
        end = now_ms() + timeout_ms
        while not self.reap():
            if now_ms() > end:
                raise Timeout('the child did not exit within %d ms' % timeout_ms)
            self.check_deadline()
            self.pump(10)
        self.drain()

    def drain(self):
        """After exit: read what is left, until EOF or 200 ms of silence."""
        quiet_until = now_ms() + 200
        while self.master is not None and not self.eof and now_ms() < quiet_until:
            if self.pump(20):
                quiet_until = now_ms() + 200

    def sleep(self, ms):
        end = now_ms() + ms
        while True:
            left = end - now_ms()
            if left <= 0:
                return
            self.check_deadline()
            self.pump(min(20, left))
            self.reap()

    def run(self, script):
        steps_out = []
        marks = []
        waits = []
        snapshots = self.snapshots = []
        timed_out = None
        error = self.spawn()
        if error:
            self.reap(block=True)
            return self.result(steps_out, marks, waits, None, 'cannot run %s: %s' % (self.argv[0], error))
        try:
            for index, step in enumerate(script):
                kind = next((k for k in ('waitFor', 'send', 'mark', 'sleepMs', 'signal', 'resize', 'snapshot', 'screenTo', 'sendFromFile', 'closePty', 'waitExit') if k in step), None)
                if kind is None:
                    raise ValueError('step %d has no known action: %s' % (index, json.dumps(step)))
                rec = {'index': index, 'kind': kind, 'startMs': r3(now_ms() - self.spawn_ms), 'bytesBefore': len(self.raw)}
                if 'label' in step:
                    rec['label'] = step['label']
                steps_out.append(rec)
                timeout_ms = step.get('timeoutMs', DEFAULT_TIMEOUT_MS)
                try:
                    if kind == 'waitFor':
                        w = self.wait_for(step, timeout_ms)
                        rec.update(w)
                        waits.append({'index': index, 'pattern': step['waitFor'], **({'label': step['label']} if 'label' in step else {}), **w})
                    elif kind == 'send':
                        if self.reap() or not self.write(step['send'].encode('utf-8'), timeout_ms):
                            rec['notSent'] = 'the child had exited'
                    elif kind == 'mark':
                        self.pump(0)
                        marks.append({'name': step['mark'], 'ms': r3(now_ms() - self.spawn_ms), 'offset': len(self.raw)})
                    elif kind == 'sleepMs':
                        self.sleep(step['sleepMs'])
                    elif kind == 'signal':
                        name = step['signal']
                        sig = getattr(signal, name) if isinstance(name, str) else signal.Signals(name)
                        if not self.reap():
                            try:
                                if step.get('group'):
                                    os.killpg(self.pid, sig)
                                else:
                                    os.kill(self.pid, sig)
                            except ProcessLookupError:
                                pass
                    elif kind == 'resize':
                        size = step['resize']
                        self.cols, self.rows = int(size['cols']), int(size['rows'])
                        if self.master is not None:
                            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack('HHHH', self.rows, self.cols, 0, 0))
                        self.parser.screen.resize(self.cols, self.rows)
                    elif kind == 'snapshot':
                        self.pump(0)
                        snapshots.append({'name': step['snapshot'], 'ms': r3(now_ms() - self.spawn_ms), 'screen': self.parser.screen.lines()})
                    elif kind == 'screenTo':
                        self.pump(0)
                        tmp = step['screenTo'] + '.tmp'
                        with open(tmp, 'w', encoding='utf-8') as f:
                            f.write('\n'.join(self.parser.screen.lines()))
                        os.replace(tmp, step['screenTo'])
                    elif kind == 'sendFromFile':
                        path = step['sendFromFile']
                        deadline = now_ms() + timeout_ms
                        while not os.path.exists(path):
                            if now_ms() > deadline:
                                raise Timeout('no file %s within %d ms' % (path, timeout_ms))
                            self.pump(50)
                        with open(path, 'rb') as f:
                            data = f.read()
                        os.unlink(path)
                        if self.reap() or not self.write(data, timeout_ms):
                            rec['notSent'] = 'the child had exited'
                    elif kind == 'closePty':
                        self.pump(0)
                        if self.master is not None:
                            os.close(self.master)
                            self.master = None
                    elif kind == 'waitExit':
                        self.wait_exit(timeout_ms)
                except Timeout as t:
                    rec['timedOut'] = True
                    timed_out = {'index': index, 'kind': kind, 'step': step, 'reason': str(t)}
                    raise
                finally:
                    self.pump(0)
                    rec['endMs'] = r3(now_ms() - self.spawn_ms)
                    rec['bytesAfter'] = len(self.raw)
        except Timeout:
            pass
        except Exception as e:  # a bad script: still kill the child and report
            error = '%s: %s' % (type(e).__name__, e)
        killed = False
        if not self.reap():
            killed = True
            self.kill_group()
        self.drain()
        if timed_out is not None:
            timed_out['tail'] = self.parser.plain()[-TAIL_CHARS:]
        return self.result(steps_out, marks, waits, timed_out, error, killed)

    def result(self, steps_out, marks, waits, timed_out, error, killed=False):
        if self.master is not None:
            os.close(self.master)
            self.master = None
        status = self.status
        code = sig = None
        if status is not None:
            if os.WIFEXITED(status):
                code = os.WEXITSTATUS(status)
            elif os.WIFSIGNALED(status):
                sig = signal.Signals(os.WTERMSIG(status)).name
        between = []
        for a, b in zip(marks, marks[1:]):
            between.append({'from': a['name'], 'to': b['name'], 'bytes': b['offset'] - a['offset'], 'ms': r3(b['ms'] - a['ms'])})
        # ru_maxrss: the largest of the reaped children (here: the one child), KiB on Linux.
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        plain = self.parser.plain()
        scr = self.parser.screen
        return {
            'argv': self.argv,
            'cols': self.cols,
            'rows': self.rows,
            'pid': self.pid,
            'ok': timed_out is None and error is None and not killed,
            'exitCode': code,
            'signal': sig,
            'exitMs': r3(self.exit_ms - self.spawn_ms) if self.exit_ms is not None else None,
            'killedAtEnd': killed and timed_out is None and error is None,
            'killed': killed,
            'timedOut': timed_out,
            'error': error,
            'waits': waits,
            'marks': marks,
            'between': between,
            'steps': steps_out,
            'totalBytes': len(self.raw),
            'peakRssKiB': rss if status is not None else None,
            'chunks': self.chunks,
            'outputBase64': base64.b64encode(bytes(self.raw)).decode('ascii'),
            'plain': plain,
            'screen': scr.lines(),
            'scrollback': scr.scrollback,
            'screenClears': scr.clears,
            'snapshots': getattr(self, 'snapshots', []),
        }


def main(args):
    cols = rows = None
    script_path = '-'
    env_file = None
    max_ms = 120000
    i = 0
    while i < len(args):
        a = args[i]
        if a == '--':
            i += 1
            break
        if a in ('--cols', '--rows', '--script', '--env-file', '--max-ms') and i + 1 < len(args):
            v = args[i + 1]
            if a == '--cols':
                cols = int(v)
            elif a == '--rows':
                rows = int(v)
            elif a == '--script':
                script_path = v
            elif a == '--env-file':
                env_file = v
            else:
                max_ms = int(v)
            i += 2
            continue
        if a in ('-h', '--help'):
            sys.stdout.write(__doc__)
            return 0
        if a.startswith('-'):
            sys.stderr.write('pty-driver: unknown option %s\n' % a)
            return 2
        break
    argv = args[i:]
    if not argv:
        sys.stderr.write('pty-driver: no command given (pty-driver.py [options] -- COMMAND ...)\n')
        return 2
    try:
        if script_path == '-':
            spec = json.load(sys.stdin)
        else:
            with open(script_path, encoding='utf-8') as f:
                spec = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write('pty-driver: cannot read the script: %s\n' % e)
        return 2
    env = None
    if isinstance(spec, dict):
        script = spec.get('script', [])
        env = spec.get('env')
        cols = cols or spec.get('cols')
        rows = rows or spec.get('rows')
        max_ms = spec.get('maxMs', max_ms)
    else:
        script = spec
    if env_file:
        with open(env_file, encoding='utf-8') as f:
            env = json.load(f)
    if env is not None:
        env = {str(k): str(v) for k, v in env.items() if v is not None}
    if not isinstance(script, list):
        sys.stderr.write('pty-driver: the script must be a JSON array of steps\n')
        return 2
    driver = Driver(argv, env, int(cols or 80), int(rows or 24), int(max_ms))
    result = driver.run(script)
    sys.stdout.write(json.dumps(result, ensure_ascii=True))
    sys.stdout.write('\n')
    sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

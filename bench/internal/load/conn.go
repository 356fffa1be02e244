package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// PostJSON returns the bytes of an HTTP/1.1 POST of a JSON body to path on
// host, with a bearer token when token is not "". The request is built
// once and sent as it is, so the load generator spends nothing per request
// on encoding.
func PostJSON(host, path, token string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, host, len(body))
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// Get returns the bytes of an HTTP/1.1 GET of path on host, with a bearer
// token when token is not "" and the headers given, as "Name: value"
// lines, built once as PostJSON's are.
func Get(host, path, token string, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Conn is one keep-alive HTTP/1.1 connection that sends prepared requests
// and reads their answers: the least a client can do per request, so that
// the generator, which shares the machine with the server, takes as little
// CPU as it can, and the same for every server. It is not safe for
// concurrent use.
type Conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	body []byte
}

// Dial connects to addr (host:port).
func Dial(addr string) (*Conn, error) {
	c := &Conn{addr: addr}
	if err := c.connect(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) connect() error {
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("load: connecting to %s: %w", c.addr, err)
	}
	c.c, c.r = nc, bufio.NewReaderSize(nc, 16<<10)
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c.c == nil {
		return nil
	}
	return c.c.Close()
}

// Do sends req and returns the answer's status and body. The body is valid
// until the next call. After an error the connection is closed and the next
// call reconnects.
func (c *Conn) Do(req []byte) (int, []byte, error) {
	if c.c == nil {
		if err := c.connect(); err != nil {
			return 0, nil, err
		}
	}
	status, body, keep, err := c.roundTrip(req)
	if err != nil || !keep {
		c.c.Close()
		c.c = nil
	}
	return status, body, err
}

func (c *Conn) roundTrip(req []byte) (status int, body []byte, keep bool, err error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, nil, false, fmt.Errorf("load: sending: %w", err)
	}
	status, length, chunked, keep, err := readHead(c.r)
	if err != nil {
		return 0, nil, false, err
	}
	c.body = c.body[:0]
	if chunked {
		c.body, err = readChunked(c.r, c.body)
	} else if length >= 0 {
		c.body = grow(c.body, length)
		_, err = io.ReadFull(c.r, c.body)
	} else {
		return 0, nil, false, errors.New("load: an answer without Content-Length or chunked encoding")
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("load: reading the body: %w", err)
	}
	return status, c.body, keep, nil
}

// readHead reads a status line and headers. length is -1 when absent.
func readHead(r *bufio.Reader) (status, length int, chunked, keep bool, err error) {
	line, err := readLine(r)
	if err != nil {
		return 0, 0, false, false, fmt.Errorf("load: reading the status line: %w", err)
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, false, false, fmt.Errorf("load: bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, 0, false, false, fmt.Errorf("load: bad status line %q", line)
	}
	length, keep = -1, line[7] == '1'
	for {
		line, err := readLine(r)
		if err != nil {
			return 0, 0, false, false, fmt.Errorf("load: reading headers: %w", err)
		}
		if len(line) == 0 {
			return status, length, chunked, keep, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, false, false, fmt.Errorf("load: bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, 0, false, false, fmt.Errorf("load: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		}
	}
}

// readLine reads a line without its CRLF.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func readChunked(r *bufio.Reader, body []byte) ([]byte, error) {
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers, then the empty line.
			for {
				line, err := readLine(r)
				if err != nil {
					return nil, err
				}
				if len(line) == 0 {
					return body, nil
				}
			}
		}
		start := len(body)
		body = grow(body, start+int(n))
		if _, err := io.ReadFull(r, body[start:]); err != nil {
			return nil, err
		}
		if line, err := readLine(r); err != nil || len(line) != 0 {
			return nil, fmt.Errorf("no CRLF after a chunk")
		}
	}
}

// grow returns b resliced to n bytes, reallocated when too small.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		nb := make([]byte, n, max(n, 2*cap(b)))
		copy(nb, b)
		return nb
	}
	return b[:n]
}

// Package jsonstream reads the JSON progress stream a Docker daemon answers
// loads and pulls with, turning an error message in it into a Go error.
package jsonstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrDaemon is matched (errors.Is) by an error the daemon reported in a
// progress stream.
var ErrDaemon = errors.New("daemon reported an error")

type message struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// Read drains r and returns the stream and status lines it carried. An
// error message in the stream is returned as an error matching ErrDaemon; a
// body that is not a JSON stream is returned as text in the lines.
func Read(r io.Reader) ([]string, error) {
	var lines []string
	dec := json.NewDecoder(r)
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			// Not JSON: keep what remains as text (old daemons answer plain text).
			rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), r))
			if s := strings.TrimSpace(string(rest)); s != "" {
				lines = append(lines, s)
			}
			return lines, nil
		}
		if msg := m.Error; msg != "" || m.ErrorDetail != nil {
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return lines, fmt.Errorf("%w: %s", ErrDaemon, msg)
		}
		for _, s := range []string{m.Stream, m.Status} {
			if s = strings.TrimSpace(s); s != "" {
				lines = append(lines, s)
			}
		}
	}
}

// LoadedImages returns what `Loaded image: NAME` and `Loaded image ID: ID`
// lines of a load name.
func LoadedImages(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, p := range []string{"Loaded image ID: ", "Loaded image: "} {
			if rest, ok := strings.CutPrefix(l, p); ok {
				out = append(out, strings.TrimSpace(rest))
			}
		}
	}
	return out
}

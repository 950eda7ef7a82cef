package bulkimport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Remote sends batches to a FHIR server as batch Bundles: POST [base] with one PUT
// Type/id entry a resource, so that ids are kept and a re-run updates. The server
// validates, authorizes and stores each entry as it would the single PUT.
type Remote struct {
	Base   string
	Token  string
	Client *http.Client
}

// NewRemote returns the sink of the server at base, called with token (none when
// empty).
func NewRemote(base, token string) (*Remote, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) base URL such as http://localhost:8080/fhir", base)
	}
	return &Remote{Base: strings.TrimRight(base, "/"), Token: token, Client: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// batchResponse is what Remote reads of a batch-response Bundle.
type batchResponse struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		Response struct {
			Status  string          `json:"status"`
			Outcome json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
	Issue []outcomeIssue `json:"issue"`
}

type outcomeIssue struct {
	Diagnostics string `json:"diagnostics"`
	Details     struct {
		Text string `json:"text"`
	} `json:"details"`
}

// WriteBatch sends items as one batch Bundle (see Sink). An entry the server refuses
// is failed with the server's reason; a Bundle too large for the server is sent again
// in halves; a refusal of the whole request (authentication, the server's limits) or a
// server that cannot be reached stops the import.
func (r *Remote) WriteBatch(ctx context.Context, items []*Item) ([]Result, error) {
	res := make([]Result, len(items))
	return res, r.write(ctx, items, res)
}

func (r *Remote) write(ctx context.Context, items []*Item, res []Result) error {
	var sent []int // the items sent, by their index in items
	for i, it := range items {
		res[i] = Result{}
		if it.Err != nil {
			res[i] = Result{Err: it.Err}
		} else {
			sent = append(sent, i)
		}
	}
	if len(sent) == 0 {
		return nil
	}
	var body bytes.Buffer
	body.WriteString(`{"resourceType":"Bundle","type":"batch","entry":[`)
	for k, i := range sent {
		it := items[i]
		if k > 0 {
			body.WriteByte(',')
		}
		u, _ := json.Marshal(it.Type + "/" + it.ID)
		body.WriteString(`{"resource":`)
		body.Write(it.Raw)
		body.WriteString(`,"request":{"method":"PUT","url":`)
		body.Write(u)
		body.WriteString(`}}`)
	}
	body.WriteString(`]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Base, &body)
	if err != nil {
		return failAll(res, err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return failAll(res, err) // it names the method and URL
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return failAll(res, fmt.Errorf("POST %s: %w", r.Base, err))
	}
	var br batchResponse
	_ = json.Unmarshal(data, &br)
	if resp.StatusCode == http.StatusRequestEntityTooLarge && len(sent) > 1 {
		h := len(items) / 2
		if err := r.write(ctx, items[:h], res[:h]); err != nil {
			return failAll(res[h:], err)
		}
		return r.write(ctx, items[h:], res[h:])
	}
	if resp.StatusCode != http.StatusOK || br.ResourceType != "Bundle" || len(br.Entry) != len(sent) {
		msg := outcomeText(br.Issue)
		if msg == "" {
			msg = strings.TrimSpace(string(data[:min(len(data), 300)]))
		}
		return failAll(res, fmt.Errorf("POST %s: %s: %s", r.Base, resp.Status, msg))
	}
	for k, e := range br.Entry {
		i := sent[k]
		code, _, _ := strings.Cut(e.Response.Status, " ")
		switch code {
		case "201":
			res[i] = Result{Outcome: Created}
		case "200":
			res[i] = Result{Outcome: Updated}
		default:
			var oo struct {
				Issue []outcomeIssue `json:"issue"`
			}
			_ = json.Unmarshal(e.Response.Outcome, &oo)
			msg := outcomeText(oo.Issue)
			if msg == "" {
				msg = "refused"
			}
			res[i] = Result{Err: fmt.Errorf("%s: %s", e.Response.Status, msg)}
		}
	}
	return nil
}

// failAll fails every result with err, and returns it.
func failAll(res []Result, err error) error {
	for i := range res {
		res[i] = Result{Err: err}
	}
	return err
}

// outcomeText is an OperationOutcome's issues in one line.
func outcomeText(issues []outcomeIssue) string {
	var parts []string
	for _, is := range issues {
		t := is.Diagnostics
		if t == "" {
			t = is.Details.Text
		}
		if t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "; ")
}

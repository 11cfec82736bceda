// A Go app of the Preview Marketplace era, as the proxy front door meets it: net/http with the
// default base URL https://preview.twilio.com, the proxy from HTTPS_PROXY and the trusted CAs
// from SSL_CERT_FILE (Go reads both itself). Only the standard library.
//
//	operations               list every page, create, list, delete and fetch the deleted add-on
//	probe ADDRESS URL...     GET each URL directly, dialling ADDRESS at the URL's port (as
//	                         curl --connect-to): was its certificate accepted?
//
// Each exchange is printed as one line, tab-separated, for the test to check:
//
//	EXCHANGE  METHOD  STATUS  URL  BODY       (operations; the body on one line)
//	ACCEPTED  URL     STATUS                  (probe)
//	REJECTED  URL     ERROR
//
// Credentials come from TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const base = "https://preview.twilio.com/marketplace"

var oneLine = strings.NewReplacer("\t", " ", "\r", " ", "\n", " ")

func exchange(client *http.Client, method, address string, form url.Values) []byte {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	request, err := http.NewRequest(method, address, body)
	if err != nil {
		fail(err)
	}
	request.SetBasicAuth(os.Getenv("TWILIO_ACCOUNT_SID"), os.Getenv("TWILIO_AUTH_TOKEN"))
	request.Header.Set("Accept", "application/json")
	if form != nil {
		request.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	response, err := client.Do(request)
	if err != nil {
		fail(err)
	}
	defer response.Body.Close()
	data, err := io.ReadAll(response.Body)
	if err != nil {
		fail(err)
	}
	fmt.Println(strings.Join([]string{"EXCHANGE", method, fmt.Sprint(response.StatusCode), address,
		oneLine.Replace(string(data))}, "\t"))
	return data
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "marketplace_client:", err)
	os.Exit(1)
}

type page struct {
	Meta struct {
		NextPageURL *string `json:"next_page_url"`
	} `json:"meta"`
	AvailableAddOns []struct {
		Sid string `json:"sid"`
	} `json:"available_add_ons"`
}

type installed struct {
	Sid string `json:"sid"`
}

func operations() {
	// http.DefaultTransport's proxy is http.ProxyFromEnvironment (HTTPS_PROXY), and its
	// trusted CAs are the system pool, which SSL_CERT_FILE replaces.
	client := &http.Client{Timeout: 20 * time.Second}
	next, available := base+"/AvailableAddOns?PageSize=3", ""
	for next != "" { // every page, by next_page_url, as the Twilio helpers page
		var current page
		if err := json.Unmarshal(exchange(client, "GET", next, nil), &current); err != nil {
			fail(err)
		}
		if available == "" && len(current.AvailableAddOns) > 0 {
			available = current.AvailableAddOns[0].Sid
		}
		next = ""
		if current.Meta.NextPageURL != nil {
			next = *current.Meta.NextPageURL
		}
	}
	form := url.Values{
		"AvailableAddOnSid":    {available},
		"AcceptTermsOfService": {"true"},
		"UniqueName":           {"go-net-http"},
	}
	var created installed
	if err := json.Unmarshal(exchange(client, "POST", base+"/InstalledAddOns", form), &created); err != nil {
		fail(err)
	}
	exchange(client, "GET", base+"/InstalledAddOns?PageSize=50", nil)
	exchange(client, "DELETE", base+"/InstalledAddOns/"+created.Sid, nil)
	exchange(client, "GET", base+"/InstalledAddOns/"+created.Sid, nil)
}

func probe(address string, targets []string) {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, hostPort string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(hostPort)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort(address, port))
		},
	}
	client := &http.Client{Transport: transport, Timeout: 20 * time.Second}
	for _, target := range targets {
		response, err := client.Get(target)
		if err != nil {
			fmt.Println(strings.Join([]string{"REJECTED", target, oneLine.Replace(err.Error())}, "\t"))
			continue
		}
		response.Body.Close()
		fmt.Println(strings.Join([]string{"ACCEPTED", target, fmt.Sprint(response.StatusCode)}, "\t"))
	}
}

func main() {
	switch {
	case len(os.Args) == 2 && os.Args[1] == "operations":
		operations()
	case len(os.Args) >= 4 && os.Args[1] == "probe":
		probe(os.Args[2], os.Args[3:])
	default:
		fmt.Fprintln(os.Stderr, "usage: marketplace_client operations | probe ADDRESS URL...")
		os.Exit(2)
	}
}

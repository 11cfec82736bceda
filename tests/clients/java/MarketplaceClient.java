// A Java app of the Preview Marketplace era, as the proxy front door meets it: the JDK's own
// java.net.http.HttpClient, the default base URL https://preview.twilio.com, the proxy from
// -Dhttps.proxyHost/-Dhttps.proxyPort (ProxySelector.getDefault()) and the trust store from
// -Djavax.net.ssl.trustStore/-Djavax.net.ssl.trustStorePassword. No library beyond the JDK.
//
//   operations        list every page, create, list, delete and fetch the deleted add-on
//   probe URL...      GET each URL directly (no proxy): was its certificate accepted?
//
// Each exchange is printed as one line, tab-separated, for the test to check:
//   EXCHANGE  METHOD  STATUS  URL  BODY       (operations; the body on one line)
//   ACCEPTED  URL     STATUS                  (probe)
//   REJECTED  URL     EXCEPTION: MESSAGE | CAUSE: MESSAGE ...
// Credentials come from TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.

import java.io.IOException;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class MarketplaceClient {
    private static final String BASE = "https://preview.twilio.com/marketplace";
    private static final Pattern NEXT = Pattern.compile("\"next_page_url\"\\s*:\\s*\"([^\"]+)\"");
    private static final Pattern AVAILABLE = Pattern.compile("\"sid\"\\s*:\\s*\"(XB[0-9a-f]{32})\"");
    private static final Pattern INSTALLED = Pattern.compile("\"sid\"\\s*:\\s*\"(XE[0-9a-f]{32})\"");

    private MarketplaceClient() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("operations")) {
            operations();
        } else if (args.length >= 2 && args[0].equals("probe")) {
            for (int i = 1; i < args.length; i++) {
                probe(args[i]);
            }
        } else {
            System.err.println("usage: MarketplaceClient operations | probe URL...");
            System.exit(2);
        }
    }

    private static String authorization() {
        String pair = System.getenv("TWILIO_ACCOUNT_SID") + ":" + System.getenv("TWILIO_AUTH_TOKEN");
        return "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
    }

    private static HttpResponse<String> exchange(HttpClient client, String method, String url, String form)
            throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(20))
                .header("Authorization", authorization())
                .header("Accept", "application/json");
        if (form == null) {
            request.method(method, HttpRequest.BodyPublishers.noBody());
        } else {
            request.header("Content-Type", "application/x-www-form-urlencoded")
                    .method(method, HttpRequest.BodyPublishers.ofString(form));
        }
        HttpResponse<String> response = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
        String body = response.body().replaceAll("[\t\r\n]", " ");
        System.out.println(String.join("\t", "EXCHANGE", method, String.valueOf(response.statusCode()), url, body));
        return response;
    }

    private static String first(Pattern pattern, String text) {
        Matcher matcher = pattern.matcher(text);
        return matcher.find() ? matcher.group(1) : null;
    }

    private static void operations() throws IOException, InterruptedException {
        HttpClient client = HttpClient.newBuilder()
                .proxy(ProxySelector.getDefault())  // https.proxyHost / https.proxyPort
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        String url = BASE + "/AvailableAddOns?PageSize=3";
        String available = null;
        while (url != null) {  // every page, by next_page_url, as the Twilio helpers page
            String body = exchange(client, "GET", url, null).body();
            if (available == null) {
                available = first(AVAILABLE, body);
            }
            url = first(NEXT, body);
        }
        String form = "AvailableAddOnSid=" + available + "&AcceptTermsOfService=true&UniqueName=java-httpclient";
        String created = first(INSTALLED, exchange(client, "POST", BASE + "/InstalledAddOns", form).body());
        exchange(client, "GET", BASE + "/InstalledAddOns?PageSize=50", null);
        exchange(client, "DELETE", BASE + "/InstalledAddOns/" + created, null);
        exchange(client, "GET", BASE + "/InstalledAddOns/" + created, null);
    }

    private static void probe(String url) throws InterruptedException {
        HttpClient client = HttpClient.newBuilder()
                .proxy(HttpClient.Builder.NO_PROXY)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(20)).build();
        try {
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            System.out.println(String.join("\t", "ACCEPTED", url, String.valueOf(response.statusCode())));
        } catch (IOException exc) {
            StringBuilder causes = new StringBuilder();
            for (Throwable cause = exc; cause != null; cause = cause.getCause()) {
                if (causes.length() > 0) {
                    causes.append(" | ");
                }
                causes.append(cause.getClass().getName()).append(": ").append(cause.getMessage());
            }
            System.out.println(String.join("\t", "REJECTED", url, causes.toString().replaceAll("[\t\r\n]", " ")));
        }
    }
}

// Every Preview Marketplace operation of twilio-node, unmodified and with its default base URL
// (https://preview.twilio.com), paging each listing to its last page. Run by
// tests/frontdoor/test_clients_node.py with HTTP_PROXY and NODE_EXTRA_CA_CERTS pointing at the
// gateway's proxy front door. Prints one JSON document: what each call returned.
"use strict";

const twilio = require("twilio");

async function allPages(listing, pageSize) {
  const pages = [];
  let page = await listing.page({ pageSize });
  while (page) {
    pages.push({ next: page.nextPageUrl || null, sids: page.instances.map((item) => item.sid) });
    page = await page.nextPage();
  }
  return pages;
}

async function main() {
  const client = twilio(process.env.TWILIO_ACCOUNT_SID, process.env.TWILIO_AUTH_TOKEN);
  const marketplace = client.preview.marketplace;
  const out = { version: require("twilio/package.json").version };

  // AvailableAddOns: list (every page), fetch; their Extensions: list (every page), fetch
  out.availablePages = await allPages(marketplace.availableAddOns, 3);
  const catalogue = out.availablePages.flatMap((page) => page.sids);
  const first = await marketplace.availableAddOns(catalogue[0]).fetch();
  out.availableFetch = { sid: first.sid, url: first.url, links: first.links };
  const google = catalogue[7];
  out.availableExtensionPages = await allPages(marketplace.availableAddOns(google).extensions, 2);
  const extensionSid = out.availableExtensionPages[0].sids[0];
  const extension = await marketplace.availableAddOns(google).extensions(extensionSid).fetch();
  out.availableExtensionFetch = { sid: extension.sid, url: extension.url };

  // InstalledAddOns: create (a few), list (every page), fetch, update, remove
  const installed = [];
  for (const sid of catalogue.slice(1, 6)) {
    const item = await marketplace.installedAddOns.create({
      availableAddOnSid: sid,
      acceptTermsOfService: true,
    });
    installed.push(item.sid);
  }
  const created = await marketplace.installedAddOns.create({
    availableAddOnSid: google,
    acceptTermsOfService: true,
    configuration: { language_code: "en-US" },
    uniqueName: "node-google",
  });
  installed.push(created.sid);
  out.created = { sid: created.sid, uniqueName: created.uniqueName, url: created.url };
  out.installedPages = await allPages(marketplace.installedAddOns, 2);
  const fetched = await marketplace.installedAddOns(created.sid).fetch();
  out.installedFetch = { sid: fetched.sid, uniqueName: fetched.uniqueName };
  const updated = await marketplace.installedAddOns(created.sid).update({ uniqueName: "renamed" });
  out.installedUpdate = { sid: updated.sid, uniqueName: updated.uniqueName };

  // Extensions of an installed add-on: list (every page), fetch, update
  const extensions = marketplace.installedAddOns(created.sid).extensions;
  out.installedExtensionPages = await allPages(extensions, 2);
  const installedExtension = out.installedExtensionPages[0].sids[0];
  const one = await extensions(installedExtension).fetch();
  out.installedExtensionFetch = { sid: one.sid, enabled: one.enabled };
  const enabled = await extensions(installedExtension).update({ enabled: true });
  out.installedExtensionUpdate = { sid: enabled.sid, enabled: enabled.enabled };

  out.removed = [];
  for (const sid of installed) {
    out.removed.push(await marketplace.installedAddOns(sid).remove());
  }
  try {
    await marketplace.installedAddOns(installed[0]).fetch();
    out.notFound = null;
  } catch (error) {
    out.notFound = { status: error.status, code: error.code };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});

// SPDX-License-Identifier: Apache-2.0
// Validates Kubernetes objects against bundled schemas. Input: a JSON file (argv[3]) holding
// [{"source": "...", "object": {...}}, ...]; argv[2] is the node_modules directory that
// scripts/setup-k8s.sh filled (kubernetes-models, @kubernetes-models/keda,
// @kubernetes-models/prometheus-operator, ajv). Built-in kinds, KEDA and Prometheus Operator
// objects are checked by the kubernetes-models packages (types, enums, required fields; not
// unknown fields). KServe objects, which no package models, are checked by our JSON schemas
// in schemas/kserve.schema.json (apiVersion, kind, required fields, unknown fields at the
// levels we use), and each of their containers by kubernetes-models' Container.
// An object of a kind nobody checks is a failure, so nothing passes unchecked.
// Prints one line per object; exits 1 when any object fails, 2 on a usage error.
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [modules, input] = process.argv.slice(2);
if (!modules || !input) {
  console.error("usage: validate_objects.mjs NODE_MODULES_DIR OBJECTS.json");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const load = (rel) => import(pathToFileURL(join(modules, rel)).href);

// apiVersion group -> package directory holding GROUP/VERSION/KIND.js.
const PACKAGES = {
  "": "kubernetes-models",
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function kserveValidator() {
  const Ajv = (await load("ajv/dist/2020.js")).default;
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
  const schema = JSON.parse(readFileSync(join(here, "schemas", "kserve.schema.json"), "utf8"));
  ajv.addSchema(schema, "kserve");
  const byKind = {
    ServingRuntime: "servingRuntime",
    ClusterServingRuntime: "servingRuntime",
    InferenceService: "inferenceService",
  };
  // One schema per kind (not the oneOf of the file), so that errors name the real defects.
  return (obj) => {
    const def = byKind[obj.kind];
    if (!def) return [`no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
    const validate = ajv.getSchema(`kserve#/$defs/${def}`);
    return validate(obj) ? [] : validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
  };
}

function containersOf(obj) {
  if (obj.kind === "ClusterServingRuntime" || obj.kind === "ServingRuntime") {
    return obj.spec?.containers ?? [];
  }
  return [];
}

async function check(obj, kserve, Container) {
  const [group, version] = obj.apiVersion?.includes("/")
    ? obj.apiVersion.split("/")
    : ["", obj.apiVersion];
  if (group === "serving.kserve.io") {
    const errors = kserve(obj);
    containersOf(obj).forEach((c, i) => {
      try {
        new Container(c).validate();
      } catch (e) {
        errors.push(`/spec/containers/${i}: ${e.message}`);
      }
    });
    return errors.join("; ");
  }
  const isBuiltIn = !(group in PACKAGES) && (group === "" || group.endsWith(".k8s.io") ||
    ["apps", "autoscaling", "batch", "policy"].includes(group));
  const pkg = PACKAGES[group] ?? (isBuiltIn ? PACKAGES[""] : undefined);
  if (!pkg || !version || !obj.kind) return `no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`;
  const path = group === "" ? `${pkg}/${version}/${obj.kind}.js` : `${pkg}/${group}/${version}/${obj.kind}.js`;
  let Model;
  try {
    Model = (await load(path))[obj.kind];
  } catch {
    return `no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    return e.message;
  }
  return "";
}

const items = JSON.parse(readFileSync(input, "utf8"));
const kserve = await kserveValidator();
const { Container } = await load("kubernetes-models/v1/Container.js");
let failed = 0;
for (const { source, object } of items) {
  const what = `${source}: ${object?.kind}/${object?.metadata?.name}`;
  const error = await check(object ?? {}, kserve, Container);
  if (error) {
    failed++;
    console.log(`FAIL ${what}: ${error}`);
  } else {
    console.log(`ok   ${what}`);
  }
}
process.exit(failed ? 1 : 0);

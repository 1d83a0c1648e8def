// The seed's Load & Release flow through the Node SDK against a Hotset server (gRPC):
// create, insert, index, load, search (hits carry their id), query, release, drop.
// Usage: node flow.mjs 127.0.0.1:PORT
import { MilvusClient, DataType, LoadState } from "@zilliz/milvus2-sdk-node";
import assert from "node:assert/strict";

const client = new MilvusClient({ address: process.argv[2] });
const name = "node_flow";
const dim = 8;
await client.dropCollection({ collection_name: name });
let r = await client.createCollection({
  collection_name: name,
  fields: [
    { name: "id", data_type: DataType.Int64, is_primary_key: true, autoID: false },
    { name: "vec", data_type: DataType.FloatVector, dim },
    { name: "title", data_type: DataType.VarChar, max_length: 64 },
  ],
});
assert.equal(r.error_code, "Success", JSON.stringify(r));
const rows = [...Array(50).keys()].map((i) => ({
  id: i,
  vec: [...Array(dim).keys()].map((j) => Math.sin(i * 7 + j)),
  title: `t${i}`,
}));
r = await client.insert({ collection_name: name, data: rows });
assert.equal(Number(r.insert_cnt), 50, JSON.stringify(r));
r = await client.createIndex({ collection_name: name, field_name: "vec",
  index_type: "FLAT", metric_type: "L2" });
assert.equal(r.error_code, "Success", JSON.stringify(r));
r = await client.search({ collection_name: name, data: [rows[3].vec], limit: 1 });
assert.notEqual(r.status.error_code, "Success", "search before load must fail");
await client.loadCollectionSync({ collection_name: name });
r = await client.getLoadState({ collection_name: name });
assert.equal(r.state, LoadState.LoadStateLoaded, JSON.stringify(r));
r = await client.search({ collection_name: name, data: [rows[3].vec], limit: 3,
  output_fields: ["title"] });
assert.equal(r.status.error_code, "Success", JSON.stringify(r.status));
assert.equal(String(r.results[0].id), "3", JSON.stringify(r.results));
assert.equal(r.results[0].title, "t3", JSON.stringify(r.results));
assert.equal(r.results.length, 3);
r = await client.query({ collection_name: name, filter: "id < 5", output_fields: ["title"] });
assert.equal(r.data.length, 5, JSON.stringify(r));
r = await client.releaseCollection({ collection_name: name });
assert.equal(r.error_code, "Success", JSON.stringify(r));
r = await client.getLoadState({ collection_name: name });
assert.equal(r.state, LoadState.LoadStateNotLoad, JSON.stringify(r));
// an alias names the collection wherever its name is used
r = await client.createAlias({ collection_name: name, alias: "a1" });
assert.equal(r.error_code, "Success", JSON.stringify(r));
r = await client.listAliases({ collection_name: name });
assert.deepEqual(r.aliases, ["a1"], JSON.stringify(r));
r = await client.describeCollection({ collection_name: "a1" });
assert.equal(r.collection_name, name, JSON.stringify(r.status));
r = await client.dropCollection({ collection_name: name });
assert.notEqual(r.error_code, "Success", "a collection with aliases is not dropped");
await client.dropAlias({ alias: "a1" });
await client.dropCollection({ collection_name: name });
console.log("node ok");

// The NodeJS snippet of the Milvus "Load & Release" page, run against Hotset by test_node_sdk.py.
import { MilvusClient, DataType } from "@zilliz/milvus2-sdk-node";

const address = process.env.MILVUS_ADDRESS;
const token = "root:Milvus";
const client = new MilvusClient({address, token});

// 1. Create a collection in customized setup mode
const fields = [
    { name: "my_id", data_type: DataType.Int64, is_primary_key: true, autoID: false },
    { name: "my_vector", data_type: DataType.FloatVector, dim: 5 },
    { name: "my_varchar", data_type: DataType.VarChar, max_length: 512 },
];
let res = await client.createCollection({ collection_name: "customized_setup_1", fields });
console.log("create", res.error_code, res.code ?? "");
res = await client.createIndex({ collection_name: "customized_setup_1", field_name: "my_vector",
    index_type: "AUTOINDEX", metric_type: "L2" });
console.log("index", res.error_code);
// 2. Load
res = await client.loadCollection({ collection_name: "customized_setup_1" });
console.log("load", res.error_code);
res = await client.getLoadState({ collection_name: "customized_setup_1" });
console.log("state", res.state);
// 3. Release
res = await client.releaseCollection({ collection_name: "customized_setup_1" });
console.log("release", res.error_code);
res = await client.getLoadState({ collection_name: "customized_setup_1" });
console.log("state", res.state);
await client.closeConnection?.();
process.exit(0);
